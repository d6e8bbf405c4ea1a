package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestChainedPausesRefuseOnlyUnsentCalls: a host that answers every
// request at once with a 429 and "Retry-After: 1", called 10 times a
// second with the breaker off. Each answer pauses the host for a second,
// and the calls that come meanwhile wait: the host gets no request during
// a pause, so about one a second, the first of the waiting calls to wake,
// and the others wait for pause after pause. A call held so for longer than
// WithMaxRetryAfter in all (60s) is refused with ErrRateLimited, as the
// README's Bounds say; such a call never reached the host (no response
// thrown away), and waited no longer than that limit and the last pause's
// spread. Every call that reached the host returns its 429. (With server
// latency, the waiting calls that wake before the first answer of a pause
// go too: at 20ms, every call was answered.)
func TestChainedPausesRefuseOnlyUnsentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const calls = 1200 // 2 minutes at 10 a second
		var (
			mu    sync.Mutex
			sends []time.Time
			sent  = map[string]bool{}
		)
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			sends = append(sends, time.Now())
			sent[req.Header.Get("X-Call")] = true
			mu.Unlock()
			return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}, Body: http.NoBody, Request: req}, nil
		}), WithoutBreaker())
		type outcome struct {
			status int
			err    error
			took   time.Duration
		}
		outcomes := make([]outcome, calls)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := newRequest(t, context.Background(), "GET", "http://api.test/v1/items", nil)
				req.Header.Set("X-Call", strconv.Itoa(i))
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				o := outcome{err: err, took: time.Since(start)}
				if err == nil {
					o.status = resp.StatusCode
					resp.Body.Close()
				}
				outcomes[i] = o
			}()
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()

		refused := 0
		for i, o := range outcomes {
			reached := sent[strconv.Itoa(i)]
			switch {
			case o.err == nil && o.status != 429:
				t.Errorf("call %d: status %d, want the server's 429", i, o.status)
			case o.err != nil && reached:
				t.Errorf("call %d reached the host, then returned %v; want its 429", i, o.err)
			case o.err != nil && !errors.Is(o.err, ErrRateLimited):
				t.Errorf("call %d: %v; want ErrRateLimited", i, o.err)
			case o.err != nil && o.took > DefaultMaxRetryAfter+100*time.Millisecond:
				t.Errorf("call %d refused after %v; want at most %v and the spread", i, o.took, DefaultMaxRetryAfter)
			case o.err != nil:
				refused++
			}
		}
		slices.SortFunc(sends, time.Time.Compare)
		for i := 1; i < len(sends); i++ {
			if gap := sends[i].Sub(sends[i-1]); gap < time.Second {
				t.Fatalf("request %d sent %v after the 429 before it, within its pause of 1s", i, gap)
			}
		}
		t.Logf("%d calls: %d server attempts (%.4f per call), %d refused with ErrRateLimited", calls, len(sends), float64(len(sends))/calls, refused)
	})
}
