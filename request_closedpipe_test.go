package resilient

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestBodyCloseFailsClosedPipe: over net.Pipe (NewPipeServer's
// connections, an in-memory dialer's), the read that net/http's HTTP/1
// client cuts as it closes the connection after a body's Close failed
// answers "io: read/write on closed pipe", not net.ErrClosed: when that
// read won the race (TestWriteRuleBodyFailingPastContentLength failed so
// about 1 run in 50 under load), the attempt ended with a network error,
// a PUT was retried as after a connection lost, and each attempt was a
// failure of the host's breaker. The attempt failed because of the body
// all the same, as over a network connection (TestBodyCloseFailsClosedConn):
// one attempt, a *RequestError with the Close's error, counted against
// nothing. The base here answers as the race does, every time.
func TestBodyCloseFailsClosedPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Body != nil {
				io.Copy(io.Discard, req.Body)
				if req.Body.Close() != nil {
					return nil, io.ErrClosedPipe
				}
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		checkBodyCloseFails(t, base, 1)
	})
}

// TestRefusalClosedPipe: the requests net/http's HTTP/1 client refuses
// on a connection it then closes (a ContentLength without a body, a
// trailer no request may declare on a body it may send chunked) are the
// caller's mistakes when the read that the closing cuts answers first
// over net.Pipe too, with io.ErrClosedPipe. A valid request's closed pipe
// is left to the network.
func TestRefusalClosedPipe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		body    io.ReadCloser
		cl      int64
		trailer string
		want    bool
	}{
		{"ContentLength without a body", "PUT", nil, 5, "", true},
		{"a reserved trailer on a body maybe chunked", "GET", io.NopCloser(strings.NewReader("abc")), -1, "Content-Length", true},
		{"a valid request", "PUT", io.NopCloser(strings.NewReader("abc")), 3, "", false},
	} {
		req, _ := http.NewRequest(tc.method, "http://api.test/", nil)
		req.Body, req.ContentLength = tc.body, tc.cl
		if tc.trailer != "" {
			req.Trailer = http.Header{tc.trailer: nil}
		}
		err := requestFault(req, io.ErrClosedPipe)
		var re *RequestError
		if got := errors.As(err, &re); got != tc.want || !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s: requestFault(%v) = %v; want a *RequestError %v, wrapping the cause", tc.name, io.ErrClosedPipe, err, tc.want)
		}
	}
}
