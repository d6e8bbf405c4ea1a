package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRedirectHopDeclinedAfterLostAttemptClosesBody checks that the
// request http.Client follows a 307 of a keyed write with, after an
// attempt of the write that got no answer, whose first attempt the base
// declines with http.ErrSkipAltProtocol (leaving its body unread and
// open, for the http.Transport above), closes that body: the call fails
// rather than hand the hop back (see
// TestRedirectHopDeclinedAfterLostAttempt), so no one sends it, as no one
// sends a declined retry (TestAltProtocolSkipClosesBody), and
// http.Client, which leaves the body to the RoundTripper, never closes
// it. It takes no turn of the host's pace (WithRateLimit) either.
func TestRedirectHopDeclinedAfterLostAttemptClosesBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var creates atomic.Int32
		var hopBody *trackedBody
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch r.URL.Path {
			case "/create":
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if creates.Add(1) == 1 {
					return nil, errReset // processed, its answer lost: the key held
				}
				return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"/target"}},
					Body: http.NoBody, Request: r}, nil
			case "/target":
				return nil, http.ErrSkipAltProtocol // no connection: its body untouched
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithRateLimit(1, 1), WithKeyHonoringHosts("api.example"))
		req := newRequest(t, context.Background(), http.MethodPost, "http://api.example/create", strings.NewReader(`{"amount":1}`))
		req.GetBody = func() (io.ReadCloser, error) {
			b := newTrackedBody(`{"amount":1}`)
			if creates.Load() == 2 { // the hop's
				hopBody = b
			}
			return b, nil
		}
		_, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil || errors.Is(err, http.ErrSkipAltProtocol) && !lostBelow(err) {
			t.Fatalf("Do = %v, want the hop to fail as a write that may have been processed", err)
		}
		if hopBody == nil || !hopBody.isClosed() {
			t.Errorf("the hop's body was not closed")
		}
	})
}
