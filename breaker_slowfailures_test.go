package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerSlowFailuresWeighAsQuickSuccesses: a host that hangs 7 of 10
// attempts until their 20s attempt timeout, and answers the others at
// once, trips its breaker (default settings: 50% of at least 20 outcomes
// in 30s) while it is being called. Before, an outcome counted in the
// bucket of its attempt's start: a failure that took 20s of the 30s
// window stayed in it 10s, a quick success 30s, and the window saw about
// 40% failures of a host failing 70%: the breaker never opened, and every
// call went to the hanging host for the 2 minutes of traffic.
func TestBreakerSlowFailuresWeighAsQuickSuccesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n, hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			if n.Add(1)%10 < 7 {
				<-req.Context().Done() // hangs until the attempt timeout
				return nil, req.Context().Err()
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithAttemptTimeout(20*time.Second))
		const calls = 240 // one every 500ms, for 2 minutes
		refused, _ := pacedCalls(t, tr, "http://hangs.test/", calls, 500*time.Millisecond)
		if refused == 0 || hits.Load() >= calls {
			t.Errorf("the host that hangs 70%% of its attempts got %d of %d calls, %d refused: its breaker never opened while it was called", hits.Load(), calls, refused)
		}
	})
}
