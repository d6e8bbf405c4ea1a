package resilient

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerDeadHostTripsAtTimeoutsShortOfTwoTenths: a host that never
// answers trips its breaker as its first attempts time out, as it does
// with the default Window, when the attempt timeout is shorter than two
// tenths of a long Window. A timeout is a slow failure whatever its length:
// the attempts in flight will all be cut as it was, and are no successes
// to come. Before, a 19s timeout of a 100s window was no slow failure by
// its length, the attempts in flight weighed against the trip, and with a
// FailureRatio of 0.9 the breaker opened at 100s, not 20s: each call of
// those 80s more waited out its 19s.
func TestBreakerDeadHostTripsAtTimeoutsShortOfTwoTenths(t *testing.T) {
	for _, c := range []struct {
		window, timeout time.Duration
		ratio           float64
	}{
		{100 * time.Second, 10 * time.Second, 0},
		{100 * time.Second, 19 * time.Second, 0.8},
		{100 * time.Second, 19 * time.Second, 0.9},
		{10 * time.Minute, 100 * time.Second, 0.99},
	} {
		for _, rate := range []int{2, 10, 100} {
			name := fmt.Sprintf("window=%v/timeout=%v/ratio=%v/%d/s", c.window, c.timeout, c.ratio, rate)
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var hits atomic.Int32
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						hits.Add(1)
						<-req.Context().Done()
						return nil, req.Context().Err()
					})
					tr := New(base, WithMaxRetries(0), WithAttemptTimeout(c.timeout), WithoutRetryBudget(),
						WithBreaker(BreakerSettings{Window: c.window, FailureRatio: c.ratio}))
					every := time.Second / time.Duration(rate)
					calls := int(c.timeout/time.Second+20) * rate
					_, opened := pacedCalls(t, tr, "http://dead.test/", calls, every)
					// The first attempts time out after c.timeout; the
					// breaker needs MinRequests (20) of them.
					want := c.timeout + time.Duration(defaultBreakerMinRequests)*every + time.Second
					switch {
					case opened == 0:
						t.Errorf("%d calls/s to a host that never answers, %v attempt timeout, %v Window: the breaker never opened in %v of calls (%d hits), want by %v", rate, c.timeout, c.window, time.Duration(calls)*every, hits.Load(), want)
					case opened > want:
						t.Errorf("%d calls/s to a host that never answers, %v attempt timeout, %v Window: the breaker opened at %v (%d hits), want by %v", rate, c.timeout, c.window, opened, hits.Load(), want)
					}
				})
			})
		}
	}
}
