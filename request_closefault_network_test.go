package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// earlyCloseFails is a body whose Close fails when it is closed before
// its end (a reader that checks, on Close, that it was read whole).
type earlyCloseFails struct{ r *strings.Reader }

func (b *earlyCloseFails) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *earlyCloseFails) Close() error {
	if b.r.Len() > 0 {
		return errors.New("closed before its end")
	}
	return nil
}

// TestBodyCloseAfterNetworkFailureIsNotTheCallersMistake: net/http closes
// a request's body early when the connection fails while it writes it (a
// server that resets it mid-body); a body whose Close then fails did not
// cause the failure, it followed it. When the read that the closing cuts
// answers first (net.ErrClosed), the network's failure is still the
// network's, whether the body's length is known or not (ContentLength -1
// or 0, sent chunked): a PUT with GetBody is retried as after any
// connection reset, not ended as a *RequestError, the caller's mistake. A
// body read to its end whose Close then fails is still the caller's
// mistake: one attempt, a *RequestError.
func TestBodyCloseAfterNetworkFailureIsNotTheCallersMistake(t *testing.T) {
	for _, cl := range []int64{6, -1, 0} {
		var calls atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				req.Body.Read(make([]byte, 1)) // the write is cut after a byte
				req.Body.Close()
				return nil, errClosedRead
			}
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithBackoff(time.Millisecond, time.Millisecond))
		req := newRequest(t, context.Background(), "PUT", "http://api.test/v1/items/1", nil)
		newBody := func() io.ReadCloser { return &earlyCloseFails{strings.NewReader("abcdef")} }
		req.Body, req.ContentLength = newBody(), cl
		req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
		resp, err := tr.RoundTrip(req)
		if err != nil {
			var re *RequestError
			t.Fatalf("ContentLength %d: err = %v (a *RequestError: %v) after %d attempts; want the PUT retried after the network's failure", cl, err, errors.As(err, &re), calls.Load())
		}
		resp.Body.Close()

		// Read to its end, then its Close fails: the caller's mistake.
		var whole atomic.Int32
		base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
			whole.Add(1)
			io.Copy(io.Discard, req.Body)
			if req.Body.Close() != nil {
				return nil, errClosedRead
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr = New(base, WithBackoff(time.Millisecond, time.Millisecond))
		req = newRequest(t, context.Background(), "PUT", "http://api.test/v1/items/1", nil)
		req.Body, req.ContentLength = closeFails("abc"), min(cl, 3)
		req.GetBody = func() (io.ReadCloser, error) { return closeFails("abc"), nil }
		_, err = tr.RoundTrip(req)
		var re *RequestError
		if !errors.As(err, &re) || whole.Load() != 1 {
			t.Errorf("ContentLength %d, read whole: err = %v after %d attempts; want a *RequestError after one", cl, err, whole.Load())
		}
	}
}
