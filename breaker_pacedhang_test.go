package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestBreakerPacedHostThatDiesTrips checks that a host that answered and
// then never answers again trips its breaker when every attempt to it
// waits for its turn of a busy pace (WithRateLimit, one request every 9s;
// a call a second, each with a 10s budget): each attempt reaches the wire
// with what is left of its budget, less than it waited, and is cut by the
// budget. The first such cut may be the queue's; the next, with no answer
// of the host between, is the host's, or the breaker never opens and
// every caller waits out its budget on a dead host.
func TestBreakerPacedHostThatDiesTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead := time.Now().Add(time.Minute)
		srv := &flightRT{latency: func(int, *http.Request) time.Duration {
			if time.Now().Before(dead) {
				return 100 * time.Millisecond
			}
			return 24 * time.Hour
		}}
		tr := New(srv, WithRateLimit(rate.Every(9*time.Second), 1), WithMaxRetries(0), WithMaxElapsed(10*time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Minute}))
		var (
			wg                 sync.WaitGroup
			mu                 sync.Mutex
			refused, succeeded int
		)
		for range 10 * 60 { // a call a second for 10 min
			wg.Go(func() {
				code, err := getIn(t, tr, context.Background(), "http://api.test/x")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, ErrCircuitOpen):
					refused++
				case err == nil && code == http.StatusOK:
					succeeded++
				}
			})
			time.Sleep(time.Second)
		}
		wg.Wait()
		sent := len(srv.seen())
		if succeeded == 0 || refused == 0 || sent > 40 {
			t.Errorf("a paced host dead after 1 min, a call a second for 10 min: %d succeeded, %d attempts sent, %d calls refused by the breaker (state %v); want it open, at most 40 attempts sent", succeeded, sent, refused, tr.BreakerState("http://api.test/"))
		}
	})
}
