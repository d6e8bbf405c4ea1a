package resilient

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerRefusalRoundsUp checks that the time to the next probe that a
// refusal names is rounded up to the millisecond, not down: a caller that
// waits what the error says finds the breaker half-open, not open for the
// rest of a millisecond.
func TestBreakerRefusalRoundsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(bkNet{"api.test": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}))
		bkCall(t, tr, "https://api.test/")
		time.Sleep(12500*time.Millisecond + 500*time.Microsecond) // 17.4995s left
		_, _, err := bkCall(t, tr, "https://api.test/")
		bkWantOpen(t, err)
		if !strings.HasSuffix(err.Error(), ": next probe in 17.5s") {
			t.Fatalf("err = %q, want it to end in %q", err, ": next probe in 17.5s")
		}
		time.Sleep(17500 * time.Millisecond)
		if code, _, err := bkCall(t, tr, "https://api.test/"); err != nil {
			t.Errorf("call after the wait the refusal named = %d, %v; want the probe sent", code, err)
		}
	})
}
