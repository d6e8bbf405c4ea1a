package resilient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewGetBodyFailsSaysSo: the GetBody that renews the
// attempt's body (see TestHedgingTakenOverBodyReadByCopyRenewed) may fail;
// the call that returns the attempt's error then says why, as a retry's
// GetBody that fails does: it wraps errBodyNotReplayable and GetBody's
// error. It said "request body read after a newer attempt started" alone.
// The copy, which took the body over and sent it, hangs past the call's
// budget, so that no retry follows, whose GetBody would have said it; the
// server gets the copy's body alone.
func TestHedgingRenewGetBodyFailsSaysSo(t *testing.T) {
	errGone := errors.New("the file is gone")
	for _, timeout := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("attempt timeout %v", timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var got bodyLog
				base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
					if i == 1 {
						time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
						return got.created(r)
					}
					return got.hang(r) // the copy: read whole, never answered
				})
				opts := []Option{WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithMaxElapsed(time.Second)}
				if timeout > 0 {
					opts = append(opts, WithAttemptTimeout(timeout))
				}
				tr := New(base, opts...)
				req := sharedSourcePost(data)
				// The attempt's renewal, and any after it, fail; the copy's works.
				failGetBody(req, errGone, func(n int32) bool { return n > 1 })
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if !errors.Is(err, errGone) || !errors.Is(err, errBodyNotReplayable) {
					t.Errorf("RoundTrip = %v, %v; want the error of GetBody, %q, and errBodyNotReplayable", resp, err, errGone)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "resilient: ") {
					t.Errorf("RoundTrip's error = %q, want it prefixed resilient:", err)
				}
				got.checkOne(t, data) // the copy's
			})
		})
	}
}
