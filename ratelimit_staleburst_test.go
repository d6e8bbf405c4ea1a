package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestReorderedAnswerSetsNoBurstAtTheReset: three calls in flight spend a
// quota of 3 a minute; their answers (Remaining 2, 1, 0 as the server
// counted them) arrive in the reverse order, Remaining 2 last, which the
// count drops (an older answer). The pace's burst must follow the count
// (none left: a burst of 1), not that last answer's 2: at the reset, two
// calls that waited for it went together, and a host whose window rolls
// (one request back at the reset, Remaining 0 for the second) answered
// the second a 429. With the burst of the count, one goes at the reset
// and the other waits for its answer, which says the quota is spent
// again: it is refused (ErrRateLimited) then, not sent into it.
func TestReorderedAnswerSetsNoBurstAtTheReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		arrived, throttled := 0, 0
		release := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			n := arrived
			arrived++
			h := http.Header{"X-Ratelimit-Limit": {"3"}}
			status := http.StatusOK
			switch {
			case n < 3: // the first window, spent by these three
				h.Set("X-Ratelimit-Remaining", strconv.Itoa(2-n))
				h.Set("X-Ratelimit-Reset", strconv.FormatFloat((time.Minute-time.Since(start)).Seconds(), 'f', 3, 64))
			case n == 3: // the rolling window: one request back at the reset
				h.Set("X-Ratelimit-Remaining", "0")
				h.Set("X-Ratelimit-Reset", "20")
			default:
				h.Set("X-Ratelimit-Remaining", "0")
				h.Set("X-Ratelimit-Reset", "20")
				status = http.StatusTooManyRequests
				throttled++
			}
			mu.Unlock()
			if n < 3 {
				<-release[n]
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
		})
		tr := New(base, WithoutBreaker(), WithoutRetryBudget(), WithMaxRetries(0), withRand(func(int64) int64 { return 0 }))
		get := func() (int, error) {
			req := newRequest(t, context.Background(), http.MethodGet, "http://api.test/v1/items", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { get() })
		}
		synctest.Wait() // the three are in flight
		for i := 2; i >= 0; i-- {
			close(release[i]) // Remaining 0 first, Remaining 2 last
			synctest.Wait()
		}
		wg.Wait()
		type result struct {
			status int
			err    error
		}
		results := make([]result, 2)
		for i := range results {
			wg.Go(func() {
				status, err := get()
				results[i] = result{status, err}
			})
		}
		wg.Wait()
		served := 0
		for i, r := range results {
			switch {
			case r.err == nil && r.status == http.StatusOK:
				served++
			case r.err != nil && !errors.Is(r.err, ErrRateLimited):
				t.Errorf("call %d after the reset: %d, %v; want 200 or ErrRateLimited", i, r.status, r.err)
			}
		}
		if served != 1 || throttled != 0 {
			t.Errorf("after the reset: %d calls served, the server answered %d 429s; want 1 served, no 429 (the quota was spent, one request back at the reset)", served, throttled)
		}
	})
}
