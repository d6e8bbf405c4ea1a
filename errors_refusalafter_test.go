package resilient

import (
	"context"
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestRefusedRetryAfterATimeoutIsBoth: a call whose retry a layer of the
// chain refuses (here the breaker its attempt timeout opened) after an
// attempt that timed out ends with both errors, as documented: errors.Is
// finds the refusal and the timeout, and the error is a timeout, as a
// plain client's error of that one request would be. A refusal alone is
// none (TestRefusalsAreNotTimeouts).
func TestRefusedRetryAfterATimeoutIsBoth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{hang: true}}}
		tr := New(s, WithAttemptTimeout(time.Second), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		var e *Error
		if s.numCalls() != 1 || !errors.As(err, &e) || e.Attempts != 2 {
			t.Fatalf("%d requests, error %v; want one request, and the refusal of its retry", s.numCalls(), err)
		}
		if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
			!e.Timeout() || !os.IsTimeout(err) || errors.Is(err, context.Canceled) {
			t.Errorf("error %v: want the refusal and the timeout, a timeout for os.IsTimeout, no cancel", err)
		}
	})
}
