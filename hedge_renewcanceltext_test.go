package resilient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestHedgingRenewFailureCanceledSaysGetBodyOnce: a caller who cancels its
// call as the retry loop decides on the retry of an attempt whose
// renewal's GetBody failed (see TestHedgingRenewGetBodyFailsSaysSo) gets an
// error that says GetBody's failure once, and its cancel, as its Report
// says StopCanceled. It said GetBody's error twice, the attempt's and the
// retry's, which is the same, and nothing of the cancel. The cancel comes
// from the call's BackOff, at the moment the loop decides.
func TestHedgingRenewFailureCanceledSaysGetBodyOnce(t *testing.T) {
	errGone := errors.New("the file is gone")
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := renewBase(&got, func(r *http.Request) (*http.Response, error) {
			if err := got.read(r); err != nil { // takes the body over, reads it whole
				return nil, err
			}
			return nil, errReset
		})
		ctx, cancel := context.WithCancel(WithIdempotencyKey(context.Background(), "k1"))
		defer cancel()
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithBackOff(func() backoff.BackOff {
			return &resetOnBackOff{reset: cancel}
		}))
		// The attempt's renewal fails; the copy's GetBody works.
		resp, r, _, err := renewFailsCall(ctx, tr, data, errGone)
		got.checkOne(t, data) // the copy's
		if r.StopReason != StopCanceled {
			t.Errorf("Report %+v, want StopReason %q", r, StopCanceled)
		}
		if !errors.Is(err, errGone) || !errors.Is(err, context.Canceled) {
			t.Errorf("RoundTrip = %v, %v; want the error of GetBody, %q, and context.Canceled", resp, err, errGone)
		}
		if err != nil && strings.Count(err.Error(), errGone.Error()) != 1 {
			t.Errorf("RoundTrip's error = %q, want GetBody's error said once", err)
		}
	})
}
