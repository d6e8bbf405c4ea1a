package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightQueuedAttemptWaitsForAPauseLearnedMeanwhile pins that a
// 429 answered while attempts wait for a slot of its host pauses them too:
// an attempt queued behind the one that got the 429 is not sent into the
// pause when the slot comes to it, but waits for the pause's end, as a
// call that comes after the 429 does (README: the limiter "pauses every
// goroutine of that quota together after a 429").
func TestMaxInFlightQueuedAttemptWaitsForAPauseLearnedMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{
			status: func(i int) int {
				if i == 0 {
					return http.StatusTooManyRequests
				}
				return http.StatusOK
			},
			latency: func(int, *http.Request) time.Duration { return time.Second },
		}
		start := time.Now()
		var (
			mu       sync.Mutex
			arrivals []time.Duration
		)
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			arrivals = append(arrivals, time.Since(start))
			mu.Unlock()
			resp, err := srv.RoundTrip(r)
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				resp.Header.Set("Retry-After", "30")
			}
			return resp, err
		})
		tr := New(base, WithMaxInFlight(1), WithMaxRetries(0))
		var wg sync.WaitGroup
		codes := make([]int, 4)
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
		if codes[0] != http.StatusTooManyRequests {
			t.Errorf("the first call: %d, want its 429", codes[0])
		}
		for i, c := range codes[1:] {
			if c != http.StatusOK {
				t.Errorf("queued call %d: %d, want 200 after the pause", i+1, c)
			}
		}
		pauseEnd := time.Second + 30*time.Second
		for _, at := range arrivals[1:] {
			if at < pauseEnd {
				t.Errorf("the server got requests at %v; want none during the pause (1s to %v) that the first call's 429 announced", arrivals, pauseEnd)
				break
			}
		}
	})
}
