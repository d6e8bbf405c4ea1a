package resilient

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerRareSlowFailureKeepsHealthyHostClosed: the host of
// TestBreakerRareHangKeepsHealthyHostClosed (200 after 25s to two calls in
// three, 500 at once to the third, one attempt in 200 hung), its hangs cut
// after two tenths of its 100s Window or more (30s: by its attempt timeout,
// or by the call's budget with no attempt timeout), keeps its breaker
// closed, as a plain client would never refuse it. Before, one failure
// that slow made the attempts in flight weigh nothing for the rest of the
// spell, however many of the host's answers were successes: a hang among
// the first calls tripped the host at its cut (30s to 33.5s), and 513 of
// 600 calls were refused, where a rare hang cut sooner kept the slow
// successes' weight. (No hang within the 600 calls: a control.)
func TestBreakerRareSlowFailureKeepsHealthyHostClosed(t *testing.T) {
	for _, cut := range []struct {
		name string
		opts []Option
	}{
		{"attempt timeout", []Option{WithAttemptTimeout(30 * time.Second), WithMaxElapsed(time.Hour)}},
		{"budget", []Option{WithAttemptTimeout(0), WithMaxElapsed(30 * time.Second)}},
	} {
		for _, first := range []int32{1, 7, 1000} { // the first call that hangs, then one in 200 (1000: none, a control)
			t.Run(fmt.Sprintf("%s/first hang at call %d", cut.name, first), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var hits atomic.Int32
					base := rareHangHost(first, &hits)
					opts := append([]Option{WithMaxRetries(0),
						WithBreaker(BreakerSettings{Window: 100 * time.Second, FailureRatio: 0.6})}, cut.opts...)
					tr := New(base, opts...)
					const calls = 600 // one every 500ms, for 5 minutes
					refused, at := pacedCalls(t, tr, "http://rareslowfailure.test/", calls, 500*time.Millisecond)
					if refused > 5 {
						t.Errorf("%d of %d calls refused from %v (%d reached the host), want at most 5: one failure after two tenths of the Window took the weight off the slow successes in flight", refused, calls, at, hits.Load())
					}
				})
			})
		}
	}
}
