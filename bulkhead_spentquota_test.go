package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightQueuedAttemptWaitsForAQuotaSpentMeanwhile pins that a
// success that says the quota is spent (X-RateLimit-Remaining: 0, reset in
// 30 s), answered while attempts wait for a slot of its host, holds them
// too, as WithMaxInFlight says ("a quota spent"): an attempt queued behind
// it is not sent into the spent quota when the slot comes to it, but waits
// for the reset, as a call that comes after the response does.
func TestMaxInFlightQueuedAttemptWaitsForAQuotaSpentMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var arrivals []time.Duration
		start := time.Now()
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			n := len(arrivals)
			arrivals = append(arrivals, time.Since(start))
			mu.Unlock()
			time.Sleep(time.Second)
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}
			resp.Header.Set("X-RateLimit-Limit", "10")
			resp.Header.Set("X-RateLimit-Remaining", "0")
			if n > 0 {
				resp.Header.Set("X-RateLimit-Remaining", "9") // a new window
			}
			resp.Header.Set("X-RateLimit-Reset", "30")
			return resp, nil
		})
		tr := New(base, WithMaxInFlight(1), WithMaxRetries(0))
		var wg sync.WaitGroup
		codes := make([]int, 3)
		for i := range codes {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Millisecond) // in this order
				code, err := getIn(t, tr, context.Background(), "http://api.test/x")
				if err != nil {
					t.Errorf("call %d: %v", i, err)
				}
				codes[i] = code
			})
		}
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusOK {
				t.Errorf("call %d: %d, want 200", i, c)
			}
		}
		// The first answer, at 1 s, spent the quota until 31 s.
		reset := time.Second + 30*time.Second
		for _, at := range arrivals[1:] {
			if at < reset {
				t.Errorf("the server got requests at %v; want none before %v, the reset of the quota the first answer said was spent", arrivals, reset)
				break
			}
		}
	})
}
