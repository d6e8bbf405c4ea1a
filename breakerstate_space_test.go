package resilient

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerStateTrimsSpaces: BreakerState takes a host or URL with the
// spaces around it that a value read from a configuration keeps, as
// ResetHost does: the open breaker that ResetHost(" api.test ") would
// close is the one BreakerState(" api.test ") reports.
func TestBreakerStateTrimsSpaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(bkNet{"api.test": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second}))
		bkCall(t, tr, "http://api.test/")
		for _, s := range []string{" api.test ", "\tapi.test\n", " http://api.test/v1 "} {
			if got := tr.BreakerState(s); got != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want open", s, got)
			}
		}
		tr.ResetHost(" api.test ")
		if got := tr.BreakerState(" api.test "); got != BreakerClosed {
			t.Errorf("after ResetHost: BreakerState = %v, want closed", got)
		}
	})
}
