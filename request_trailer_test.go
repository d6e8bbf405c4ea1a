package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// errClosedRead is the error net/http's HTTP/1 client returns when it
// refuses to write a request on a connection it then closes, and the read
// that the closing cuts answers first: its readLoop's Peek fails, and
// Transport.roundTrip unwraps it to the *net.OpError of the read.
var errClosedRead = &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}

// TestReservedTrailerClosedConn: net/http refuses a request that declares
// a trailer no request may (Content-Length, Transfer-Encoding, Trailer)
// when its HTTP/1 client writes the body chunked, but it refuses it on a
// connection it then closes, and may report the read that the closing
// cuts ("use of closed network connection") instead of its refusal:
// TestCarelessRequestsParity/h1/Trailer_Content-Length failed so about one
// run in 300 under load. The caller's mistake was then taken for the
// network's: a GET was retried, and any request counted by the breaker (one
// that opens on one failure refused the next healthy call). It is the
// caller's mistake whatever net/http reports: one attempt, a
// *RequestError, counted against nothing. The base here answers as the
// race does, every time.
func TestReservedTrailerClosedConn(t *testing.T) {
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		if req.Trailer != nil {
			return nil, errClosedRead
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	unknown := func(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"PUT of unknown length", func() *http.Request {
			req := newRequest(t, context.Background(), "PUT", "http://api.test/v1/items/1", nil)
			req.Body, req.ContentLength = unknown("abc"), -1
			req.Trailer = http.Header{"Content-Length": nil}
			return req
		}},
		{"POST with ContentLength 0 and a body", func() *http.Request {
			req := newRequest(t, context.Background(), "POST", "http://api.test/v1/items", nil)
			req.Body = unknown("abc")
			req.Trailer = http.Header{"transfer-encoding": {"chunked"}} // net/http canonicalizes it
			return req
		}},
		{"PATCH chunked by hand", func() *http.Request {
			req := newRequest(t, context.Background(), "PATCH", "http://api.test/v1/items/1", strings.NewReader("abc"))
			req.TransferEncoding = []string{"chunked"}
			req.Trailer = http.Header{"Trailer": nil, "X-Checksum": nil}
			return req
		}},
		{"GET with a body of unknown length", func() *http.Request {
			req := newRequest(t, context.Background(), "GET", "http://api.test/v1/items", nil)
			req.Body, req.ContentLength = unknown("q"), -1
			req.Trailer = http.Header{"Content-Length": nil}
			return req
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			tr := New(base, WithBackoff(time.Millisecond, time.Millisecond),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
				WithObserver(func(Attempt) { attempts.Add(1) }))
			for range 2 {
				attempts.Store(0)
				_, err := roundTrip(t, tr, tc.req())
				var re *RequestError
				if !errors.As(err, &re) || !errors.Is(err, net.ErrClosed) || attempts.Load() != 1 {
					t.Fatalf("err = %v after %d attempts; want a *RequestError wrapping the cause after one", err, attempts.Load())
				}
			}
			if err := getClosed(t, tr, "http://api.test/v1/items"); err != nil {
				t.Errorf("healthy call after the mistakes: %v (the breaker counted them?)", err)
			}
		})
	}
}

// TestReservedTrailerFault: requestFault takes a reserved trailer for the
// caller's mistake as net/http refuses it, no further. A body HTTP/1 surely
// sends chunked makes the request one net/http never sends (HTTP/2 refuses
// any such trailer), whatever the error; a body of unknown length of a
// method that usually has none is sent chunked only if its first Read
// yields a byte, and the closed connection's error is then the refusal's.
// A body of known length (HTTP/1 sends it without its trailers), none, a
// CONNECT's, or a trailer a request may declare, leaves the error as it
// is.
func TestReservedTrailerFault(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		body    io.ReadCloser
		cl      int64
		te      []string
		trailer string
		err     error
		want    bool // a *RequestError
	}{
		{"unknown length, any error", "PUT", io.NopCloser(strings.NewReader("abc")), -1, nil, "Content-Length", io.ErrUnexpectedEOF, true},
		{"chunked by hand, any error", "POST", io.NopCloser(strings.NewReader("abc")), 3, []string{"chunked"}, "Trailer", io.ErrUnexpectedEOF, true},
		{"NoBody chunked by hand", "POST", http.NoBody, 0, []string{"chunked"}, "Trailer", errClosedRead, true},
		{"GET of unknown length, closed", "GET", io.NopCloser(strings.NewReader("q")), -1, nil, "Content-Length", errClosedRead, true},
		{"GET of unknown length, another error", "GET", io.NopCloser(strings.NewReader("q")), -1, nil, "Content-Length", io.ErrUnexpectedEOF, false},
		{"known length", "PUT", io.NopCloser(strings.NewReader("abc")), 3, nil, "Content-Length", errClosedRead, false},
		{"no body", "PUT", nil, 0, nil, "Content-Length", errClosedRead, false},
		{"NoBody", "PUT", http.NoBody, 0, nil, "Content-Length", errClosedRead, false},
		{"CONNECT", "CONNECT", io.NopCloser(strings.NewReader("abc")), -1, nil, "Content-Length", errClosedRead, false},
		{"not chunked by hand", "PUT", io.NopCloser(strings.NewReader("abc")), -1, []string{"identity"}, "Content-Length", errClosedRead, false},
		{"a trailer a request may declare", "PUT", io.NopCloser(strings.NewReader("abc")), -1, nil, "X-Checksum", errClosedRead, false},
	} {
		req, _ := http.NewRequest(tc.method, "http://api.test/", nil)
		req.Body, req.ContentLength, req.TransferEncoding = tc.body, tc.cl, tc.te
		req.Trailer = http.Header{tc.trailer: nil}
		err := requestFault(req, tc.err)
		var re *RequestError
		if got := errors.As(err, &re); got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: requestFault = %v; want a *RequestError %v, wrapping the cause", tc.name, err, tc.want)
		}
	}
}

// TestBodyCloseFailsClosedConn: net/http's HTTP/1 client fails a request
// whose body's Close fails with the Close's error (TestBodyCloseFailsAtOnce)
// as it closes the connection, and the read that the closing cuts may
// answer first, with net.ErrClosed instead: about 7 runs in 2,000 over
// loopback under load, a PUT was then retried as after a network failure,
// each attempt a failure of the host's breaker (one that opens on one
// failure refused the retry and the next healthy call). The attempt failed
// because of the body all the same: one attempt, a *RequestError with the
// Close's error, counted against nothing. The base here answers as the
// race does, every time.
func TestBodyCloseFailsClosedConn(t *testing.T) {
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			io.Copy(io.Discard, req.Body)
			if req.Body.Close() != nil {
				return nil, errClosedRead
			}
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	checkBodyCloseFails(t, base, 1)
	// A body whose Close succeeded leaves the closed connection's error
	// to the network.
	req := newRequest(t, context.Background(), "PUT", "http://api.test/v1/items/1", nil)
	body := &checkedBody{rc: io.NopCloser(strings.NewReader("abc")), want: 3}
	body.Close()
	req.Body = body
	if err := requestFault(req, errClosedRead); err != error(errClosedRead) {
		t.Errorf("requestFault(a body closed fine, %v) = %v, want the error unchanged", errClosedRead, err)
	}
}
