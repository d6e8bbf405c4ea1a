package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestBreakerRetryAtHalfOpen checks that a retry whose wait ends at the
// instant its host's breaker stops refusing (OpenTimeout after it opened)
// waits and is sent as the probe, rather than refused at once as if the
// breaker would still be open then (see breakerSet.openFor).
func TestBreakerRetryAtHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bkDead() // 500 to the first attempt, which trips the breaker
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 2 {
				h.status.Store(http.StatusOK) // the probe succeeds
			}
			return bkNet{"api.test": h}.RoundTrip(req)
		})
		tr := New(rt,
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 2 * time.Second}),
			WithBackOff(func() backoff.BackOff { return backoff.NewConstantBackOff(2 * time.Second) }))
		start := time.Now()
		code, _, err := bkCall(t, tr, "https://api.test/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("call = %d, %v; want 200 from the retry sent as the breaker half-opens", code, err)
		}
		if n := h.hits.Load(); n != 2 {
			t.Errorf("the host got %d requests, want 2", n)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the call took %v, want 2s (the backoff, which ends as the breaker half-opens)", d)
		}
		if s := tr.BreakerState("https://api.test/"); s != BreakerClosed {
			t.Errorf("breaker %v after the probe's success, want closed", s)
		}
	})
}
