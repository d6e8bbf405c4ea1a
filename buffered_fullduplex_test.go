package resilient

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBufferedResponseFullDuplex: with WithBufferedResponse, a success that
// comes while the request's body is still being sent (HTTP/2 answers a
// stream before its request ends: an echo, a bidirectional exchange) is
// handed over unread, as a plain client hands it over. Read within the
// attempt, its body waits for what the caller writes once RoundTrip has
// returned: the call hung until its deadline, and was retried.
func TestBufferedResponseFullDuplex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			pr, pw := io.Pipe()
			// The stream ends with its request's context, as net/http's do.
			context.AfterFunc(req.Context(), func() { pw.CloseWithError(context.Cause(req.Context())) })
			go func() { // the server echoes the stream as it comes
				_, err := io.Copy(pw, req.Body)
				req.Body.Close()
				pw.CloseWithError(err)
			}()
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: pr, ContentLength: -1, Request: req}, nil
		})
		in, out := io.Pipe()
		defer out.Close()
		req := newRequest(t, context.Background(), http.MethodPut, "https://api.test/v1/echo", nil)
		req.Body, req.ContentLength = in, -1
		start := time.Now()
		resp, err := New(base, WithBufferedResponse(1<<20)).RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip after %v: %v; want the stream's 200", time.Since(start), err)
		}
		defer resp.Body.Close()
		if d := time.Since(start); d != 0 || hits.Load() != 1 {
			t.Errorf("RoundTrip returned after %v and %d attempts, want at once after 1", d, hits.Load())
		}
		go func() {
			out.Write([]byte("ping"))
			out.Close()
		}()
		b, err := io.ReadAll(resp.Body)
		if string(b) != "ping" || err != nil {
			t.Errorf("echo %q, %v; want \"ping\"", b, err)
		}
	})
}
