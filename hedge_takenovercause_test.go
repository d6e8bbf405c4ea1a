package resilient

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingTakenOverAttemptFailsWithCopysError: an attempt whose body a
// copy took over before it read any (see TestHedgingCopyTakesOverUnreadBody),
// whose Read then failed while the copy still sent the body, never reached
// the host: when the copy, which did, fails (a reset) and the call ends
// there (no retry fits its budget), the call's error is the copy's, the
// one the host's answer made, and its Report and Error count the same
// attempts. It was the attempt's "request body read after a newer attempt
// started", which says nothing of the host, and errors.Is found no reset.
func TestHedgingTakenOverAttemptFailsWithCopysError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := renewBase(&got, func(r *http.Request) (*http.Response, error) {
			// The copy reads part of the body, still sending it when the
			// attempt's Read begins at 20ms; it reads the rest, then its
			// connection resets at 30ms.
			io.ReadFull(r.Body, make([]byte, 4))
			time.Sleep(20 * time.Millisecond)
			if err := got.read(r); err != nil {
				return nil, err
			}
			return nil, errReset
		})
		// No retry fits after the reset: 30ms + 5ms of backoff > 32ms.
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithBackoff(5*time.Millisecond, 5*time.Millisecond), WithMaxElapsed(32*time.Millisecond))
		var r Report
		req := sharedSourcePost(data)
		req = req.WithContext(WithReport(req.Context(), &r))
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		synctest.Wait()
		if !errors.Is(err, errReset) || err != nil && strings.Contains(err.Error(), errBodyDetached.Error()) {
			t.Errorf("RoundTrip = %v, %v; want the copy's reset, not the attempt's detached body", resp, err)
		}
		var e *Error
		if r.StopReason != StopDeadline || r.Attempts != 2 || r.Hedges != 1 || !errors.As(err, &e) || e.Attempts != 2 || e.Hedges != 1 {
			t.Errorf("Report %+v, error %v; want StopReason %q, 2 attempts, 1 of them a hedge, in both", r, err, StopDeadline)
		}
	})
}
