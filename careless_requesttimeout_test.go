package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
)

// TestRequestErrorTimeoutIsItsCause: a *RequestError whose cause is a
// timeout (a body whose Read timed out, os.ErrDeadlineExceeded) says so
// through Timeout, as *Error does: a caller that takes the RequestError
// out of the call's error (errors.As) or out of an Attempt, and tests
// interface{ Timeout() bool } as net/http's users do, saw no timeout. A
// RequestError of another cause (an invalid header) is no timeout.
func TestRequestErrorTimeoutIsItsCause(t *testing.T) {
	srv, _ := countConns(t, func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
		want bool
	}{
		{"body Read timed out", func(r *http.Request) {
			r.Body, r.ContentLength, r.GetBody = io.NopCloser(errReader{os.ErrDeadlineExceeded}), 5, nil
		}, true},
		{"invalid header", func(r *http.Request) { r.Header.Set("X-Bad", "a\x00b") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []error
			tr := New(&http.Transport{}, WithObserver(func(a Attempt) { seen = append(seen, a.Err) }))
			defer tr.CloseIdleConnections()
			req := newRequest(t, context.Background(), http.MethodPut, srv.URL, nil)
			tc.set(req)
			_, err := roundTrip(t, tr, req)
			for i, e := range append([]error{err}, seen...) {
				var re *RequestError
				if !errors.As(e, &re) {
					t.Fatalf("error %d = %v, want a *RequestError", i, e)
				}
				to, ok := any(re).(interface{ Timeout() bool })
				if got := ok && to.Timeout(); got != tc.want {
					t.Errorf("error %d: the *RequestError of %v: Timeout() = %v (has the method: %v), want %v", i, re, got, ok, tc.want)
				}
			}
			if got := errors.Is(err, os.ErrDeadlineExceeded); got != tc.want {
				t.Errorf("errors.Is(%v, os.ErrDeadlineExceeded) = %v, want %v", err, got, tc.want)
			}
			if got := os.IsTimeout(err); got != tc.want {
				t.Errorf("os.IsTimeout(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}
