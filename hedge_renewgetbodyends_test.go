package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRenewGetBodyFailureEndsTheCall: a GetBody that fails as it
// renews the attempt's body (see TestHedgingRenewGetBodyFailsSaysSo) ends
// the call as a retry's GetBody that fails does: no retry follows, whose
// GetBody the call would ask again (a GetBody that failed once may be the
// caller's bug, which no retry mends), and the call returns what the copy
// that sent the body got: its 503, or, when it got no answer, the error of
// GetBody. It retried, and sent the body again from a GetBody that then
// worked.
func TestHedgingRenewGetBodyFailureEndsTheCall(t *testing.T) {
	errGone := errors.New("the file is gone")
	for _, tc := range []struct {
		name string
		copy func(*http.Request) (*http.Response, error) // the copy's answer, once it read the body
	}{
		{"copy answered 503", func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}},
		{"copy reset", func(*http.Request) (*http.Response, error) { return nil, errReset }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var got bodyLog
				base := renewBase(&got, func(r *http.Request) (*http.Response, error) {
					if err := got.read(r); err != nil { // takes the body over, reads it whole
						return nil, err
					}
					return tc.copy(r)
				})
				tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithBackoff(time.Millisecond, time.Millisecond))
				// The attempt's renewal fails; the copy's and a retry's work.
				resp, r, gets, err := renewFailsCall(context.Background(), tr, data, errGone)
				status := 0
				if err == nil {
					status = resp.StatusCode
				}
				if n := gets.Load(); n != 2 {
					t.Errorf("GetBody called %d times, want 2 (the copy's, the renewal's): no retry's after the renewal's failed", n)
				}
				got.checkOne(t, data) // the copy's
				if r.StopReason != StopBodyNotReplayable {
					t.Errorf("Report %+v, want StopReason %q", r, StopBodyNotReplayable)
				}
				if tc.name == "copy answered 503" && status != 503 {
					t.Errorf("RoundTrip = %d, %v; want the copy's 503", status, err)
				}
				if tc.name == "copy reset" && (!errors.Is(err, errGone) || !errors.Is(err, errBodyNotReplayable)) {
					t.Errorf("RoundTrip = %d, %v; want the error of GetBody, %q, and errBodyNotReplayable", status, err, errGone)
				}
			})
		})
	}
}

// TestHedgingRenewGetBodyFailureSendsNoLaterCopy: after GetBody failed to
// renew the attempt's body, a later copy (MaxHedges 2) does not ask it for
// another: it is not sent, and the copy that sent the body decides the
// attempt. The later copy was sent with a body from GetBody asked again.
func TestHedgingRenewGetBodyFailureSendsNoLaterCopy(t *testing.T) {
	errGone := errors.New("the file is gone")
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var got bodyLog
		base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
			if i == 1 {
				time.Sleep(15 * time.Millisecond) // the attempt's dial, past the first copy's delay
				return got.created(r)
			}
			return got.hang(r) // a copy: read whole, never answered
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 2}), WithMaxElapsed(time.Second))
		// The attempt's renewal fails; the others work.
		resp, r, gets, err := renewFailsCall(context.Background(), tr, data, errGone)
		if n := gets.Load(); n != 2 || r.Hedges != 1 {
			t.Errorf("GetBody called %d times, %d copies sent; want 2 (the first copy's, the renewal's), 1", n, r.Hedges)
		}
		got.checkOne(t, data) // the first copy's
		if !errors.Is(err, errGone) {
			t.Errorf("RoundTrip = %v, %v; want the error of GetBody, %q", resp, err, errGone)
		}
	})
}
