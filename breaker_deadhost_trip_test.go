package resilient

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerDeadHostTripsAtItsFirstTimeouts: a host that never answers,
// called at a steady rate through a 10s attempt timeout, trips its breaker
// as its first attempts time out, whatever the rate. The attempts still in
// flight then are no successes to come: attempts as old as they have timed
// out. Before, 0b945a1 weighed them as outcomes that might succeed, and at
// 100 calls a second the breaker opened at 23s, not 10s: 1,300 more calls
// each waited out their 10s.
func TestBreakerDeadHostTripsAtItsFirstTimeouts(t *testing.T) {
	for _, rate := range []int{2, 10, 100} {
		t.Run(fmt.Sprintf("%d/s", rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					<-req.Context().Done()
					return nil, req.Context().Err()
				})
				tr := New(base, WithMaxRetries(0), WithAttemptTimeout(10*time.Second), WithoutRetryBudget())
				every := time.Second / time.Duration(rate)
				_, opened := pacedCalls(t, tr, "http://dead.test/", 40*rate, every) // 40s of calls
				// The first attempts time out at 10s; the breaker needs
				// MinRequests (20) of them, which take 10s at 2 calls a second.
				want := 10*time.Second + time.Duration(defaultBreakerMinRequests)*every + time.Second
				if got := opened; got == 0 || got > want {
					t.Errorf("%d calls/s to a host that never answers: the breaker opened at %v (%d hits), want by %v", rate, got, hits.Load(), want)
				}
			})
		})
	}
}
