package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewGetBodyFailsAfterCopyResetSaysBoth: when GetBody fails
// to renew the attempt's body (see TestHedgingRenewGetBodyFailsSaysSo) and
// the copy that sent the body got no answer (its connection reset), the
// call's error says both: the body could not be sent again, which ends
// the call, and the host reset the copy that sent it; errors.Is finds
// GetBody's error and the reset, whichever came first. It said the
// attempt's GetBody failure alone: the reset the host met was lost.
func TestHedgingRenewGetBodyFailsAfterCopyResetSaysBoth(t *testing.T) {
	errGone := errors.New("the file is gone")
	// resetAfter is how long the copy, once it read the body whole, takes
	// to reset: before the attempt's renewal at 20ms, or after it.
	for _, resetAfter := range []time.Duration{0, 30 * time.Millisecond} {
		t.Run(fmt.Sprintf("reset after %v", resetAfter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var got bodyLog
				base := renewBase(&got, func(r *http.Request) (*http.Response, error) {
					if err := got.read(r); err != nil { // takes the body over, reads it whole
						return nil, err
					}
					time.Sleep(resetAfter)
					return nil, errReset
				})
				tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithBackoff(time.Millisecond, time.Millisecond))
				// The attempt's renewal fails; the copy's GetBody works.
				resp, r, gets, err := renewFailsCall(context.Background(), tr, data, errGone)
				if n := gets.Load(); n != 2 {
					t.Errorf("GetBody called %d times, want 2 (the copy's, the renewal's)", n)
				}
				got.checkOne(t, data) // the copy's
				if !errors.Is(err, errGone) || !errors.Is(err, errBodyNotReplayable) || !errors.Is(err, errReset) {
					t.Errorf("RoundTrip = %v, %v; want the error of GetBody, %q, errBodyNotReplayable and the copy's reset", resp, err, errGone)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "resilient: ") {
					t.Errorf("RoundTrip's error = %q, want it prefixed resilient:", err)
				}
				if err != nil && strings.Count(err.Error(), errGone.Error()) != 1 {
					t.Errorf("RoundTrip's error = %q, want GetBody's error said once", err)
				}
				if r.StopReason != StopBodyNotReplayable || r.Attempts != 2 || r.Hedges != 1 {
					t.Errorf("Report %+v, want StopReason %q, 2 attempts, 1 of them a hedge", r, StopBodyNotReplayable)
				}
			})
		})
	}
}
