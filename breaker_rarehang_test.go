package resilient

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerRareHangKeepsHealthyHostClosed: a host that answers 200
// after 25s to two calls in three and 500 at once to the third (33%
// failures, under a FailureRatio of 0.6), and hangs one attempt in 200
// until its 30s attempt timeout (under two tenths of a 200s Window), keeps
// its breaker closed, as a plain client would never refuse it: the slow
// successes in flight weigh against the early quick failures of the
// spell. Before, one attempt timeout made the attempts in flight weigh
// nothing for the spell, however many of the host's answers were
// successes: a hang among the first 15 calls tripped the host at 30s to
// 37s, and 1,083 of 1,200 calls were refused. (A first hang at call 40
// lands once the successes have caught up: a control.)
func TestBreakerRareHangKeepsHealthyHostClosed(t *testing.T) {
	for _, first := range []int32{1, 7, 13, 40} { // the first call that hangs; then one in 200
		t.Run(fmt.Sprintf("first hang at call %d", first), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := rareHangHost(first, &hits)
				tr := New(base, WithMaxRetries(0), WithAttemptTimeout(30*time.Second), WithMaxElapsed(time.Hour),
					WithBreaker(BreakerSettings{Window: 200 * time.Second, FailureRatio: 0.6}))
				const calls = 1200 // one every 500ms, for 10 minutes
				refused, at := pacedCalls(t, tr, "http://rarehang.test/", calls, 500*time.Millisecond)
				if refused > 5 {
					t.Errorf("%d of %d calls refused from %v (%d reached the host), want at most 5: one attempt timeout in 200 calls took the weight off the slow successes in flight", refused, calls, at, hits.Load())
				}
			})
		})
	}
}

// TestBreakerTimeoutsWeighInFlightBySuccesses: once attempts of a spell
// were cut by their attempt timeout, the attempts in flight weigh against
// a trip in the share of the window's answers that were successes: none
// when the host never answered one, nearly all when it hung one attempt
// among many successes.
func TestBreakerTimeoutsWeighInFlightBySuccesses(t *testing.T) {
	for _, tc := range []struct {
		successes, failures, timeouts, inFlight int
		want                                    bool
	}{
		{0, 20, 0, 20, false}, // 20 of 40 at best: under 0.6
		{0, 20, 1, 20, true},  // no success: those in flight weigh nothing
		{5, 20, 1, 20, false}, // 20 of 41.7 at best: 5 of 6 weighed answers succeeded
		{5, 20, 20, 20, true}, // 20 of 29 at best: 5 of 25 did
	} {
		s := newBreakerSet(BreakerSettings{MinRequests: 20, FailureRatio: 0.6}, nil, nil)
		w := new(closedWindow)
		w.reset(0, s.period)
		w.inFlightWord(nil, 0).Add(int64(tc.inFlight))
		for range tc.successes {
			w.success(nil, 1, 1)
		}
		for range tc.failures {
			w.failure(1, 1)
		}
		w.slowFailures.Store(uint32(tc.timeouts))
		if got := s.tripped(w, 1); got != tc.want {
			t.Errorf("%d successes, %d failures (%d timed out), %d in flight: tripped = %v, want %v", tc.successes, tc.failures, tc.timeouts, tc.inFlight, got, tc.want)
		}
	}
}

// TestBreakerEarlyHangAmongFewAnswersKeepsHostClosed: the host of
// TestBreakerRareHangKeepsHealthyHostClosed, its attempt timeout (26s)
// a second longer than its successes take, hangs its first or second
// call: the timeout lands when the window holds one or two successes, and
// the slow successes in flight must keep the weight the few answers give
// them. It guards the trip rule against the candidate that counts the
// attempts in flight as failures to come in the share of timeouts,
// (f + p·(1−w)) / (n + p) with w = successes/(successes+timeouts): with
// two answers of three successes it tripped the host at 27s, and 519 of
// 600 calls were refused, where the rule f / (n + p·w) refuses none.
func TestBreakerEarlyHangAmongFewAnswersKeepsHostClosed(t *testing.T) {
	for _, first := range []int32{1, 2} { // the first call that hangs; then one in 200
		t.Run(fmt.Sprintf("first hang at call %d", first), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := rareHangHost(first, &hits)
				tr := New(base, WithMaxRetries(0), WithAttemptTimeout(26*time.Second), WithMaxElapsed(time.Hour),
					WithBreaker(BreakerSettings{Window: 200 * time.Second, FailureRatio: 0.6}))
				const calls = 600 // one every 500ms, for 5 minutes
				refused, at := pacedCalls(t, tr, "http://earlyhang.test/", calls, 500*time.Millisecond)
				if refused > 5 {
					t.Errorf("%d of %d calls refused from %v (%d reached the host), want at most 5: a hang among the first answers took the weight off the slow successes in flight", refused, calls, at, hits.Load())
				}
			})
		})
	}
}

// rareHangHost is the host of the rare-hang tests, counting its requests
// in hits: it answers a third of its calls with a quick 500, the others
// with a 200 after 25s, and hangs call first and one in 200 after it.
func rareHangHost(first int32, hits *atomic.Int32) http.RoundTripper {
	var n atomic.Int32
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		hits.Add(1)
		i := n.Add(1)
		var answer <-chan time.Time // nil: hangs
		code := http.StatusOK
		switch {
		case i >= first && (i-first)%200 == 0:
		case i%3 == 0:
			code = http.StatusInternalServerError
			answer = time.After(0)
		default:
			answer = time.After(25 * time.Second)
		}
		select {
		case <-answer:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
}
