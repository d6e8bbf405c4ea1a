package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestErrorCountsItsHopOfARedirect: the *Error of a call that http.Client
// redirected, and whose last hop fails, counts the attempts of that hop
// (whose URL it names), where the call's Report adds up the attempts of
// all its hops: the two tell one number only for a call not redirected,
// as Error's doc says.
func TestErrorCountsItsHopOfARedirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/a" {
				h := http.Header{"Location": {"/b"}}
				return &http.Response{StatusCode: http.StatusFound, Header: h, Body: http.NoBody, Request: r}, nil
			}
			time.Sleep(time.Millisecond)
			return nil, errReset
		})
		tr := New(base, WithMaxRetries(1), WithBackoff(0, 0))
		var r Report
		req, err := http.NewRequestWithContext(WithReport(context.Background(), &r), "GET", "http://api.test/a", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&http.Client{Transport: tr}).Do(req)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Do error = %v, want an *Error", err)
		}
		if e.Attempts != 2 || e.URL != "http://api.test/b" || r.Attempts != 3 || r.Redirects != 1 {
			t.Errorf("Error{URL: %s, Attempts: %d}, Report %+v; want the hop's 2 attempts to /b, and the call's 3 with 1 redirect", e.URL, e.Attempts, r)
		}
	})
}
