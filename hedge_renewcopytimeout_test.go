package resilient

import (
	"context"
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestHedgingRenewFailureCopyTimedOut: when GetBody fails to renew the
// attempt's body (see TestHedgingRenewGetBodyFailsAfterCopyResetSaysBoth)
// and the copy that sent the body hung until its attempt timeout, the
// call ends on GetBody's failure, as its Report says
// (StopBodyNotReplayable, or StopCanceled when the caller canceled as the
// loop decided): its error says GetBody's error for errors.Is, and the
// copy's timeout as its text only, as beforeCancel tells a timeout before
// a cancel. The copy's timeout, wrapped, made the call's error a timeout
// (os.IsTimeout, context.DeadlineExceeded for errors.Is), and once the
// caller canceled, the whole error was flattened to text: errors.Is found
// neither GetBody's error nor errBodyNotReplayable.
func TestHedgingRenewFailureCopyTimedOut(t *testing.T) {
	errGone := errors.New("the file is gone")
	for _, canceled := range []bool{false, true} {
		name := "ends"
		if canceled {
			name = "canceled"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var got bodyLog
				base := renewBase(&got, got.hang) // the copy reads the body whole, then hangs
				ctx, cancel := context.WithCancel(WithIdempotencyKey(context.Background(), "k1"))
				defer cancel()
				opts := []Option{WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(50 * time.Millisecond)}
				if canceled {
					opts = append(opts, WithBackOff(func() backoff.BackOff { return &resetOnBackOff{reset: cancel} }))
				}
				tr := New(base, opts...)
				// The attempt's renewal fails; the copy's GetBody works.
				resp, r, _, err := renewFailsCall(ctx, tr, data, errGone)
				got.checkOne(t, data) // the copy's
				want := StopBodyNotReplayable
				if canceled {
					want = StopCanceled
				}
				if r.StopReason != want || r.Attempts != 2 || r.Hedges != 1 {
					t.Errorf("Report %+v, want StopReason %q, 2 attempts, 1 of them a hedge", r, want)
				}
				if !errors.Is(err, errGone) || !errors.Is(err, errBodyNotReplayable) {
					t.Errorf("RoundTrip = %v, %v; want the error of GetBody, %q, and errBodyNotReplayable", resp, err, errGone)
				}
				if canceled && !errors.Is(err, context.Canceled) {
					t.Errorf("RoundTrip's error = %v, want context.Canceled", err)
				}
				if os.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("RoundTrip's error = %v, a timeout; want none: the call ended on GetBody's failure", err)
				}
			})
		})
	}
}
