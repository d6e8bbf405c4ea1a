package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// TestCaptureStopsWhenTheCallEnds: a request body without GetBody is
// captured while sent, so that a retry can replay it; once RoundTrip has
// returned, no retry can follow, and what the base sends of it after the
// response (HTTP/2 sends a request body on after the response headers: a
// streaming upload, a CONNECT tunnel) is not kept. Before, every stream
// kept a copy of what it had sent, up to WithMaxBufferedBody (1 MiB), for
// as long as it lived: a plain client keeps none.
func TestCaptureStopsWhenTheCallEnds(t *testing.T) {
	sent := make(chan io.ReadCloser, 1)
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent <- req.Body // sent on after the response, as HTTP/2 does
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	data := bytes.Repeat([]byte("a"), 512<<10) // within the capture's limit
	req := newRequest(t, context.Background(), http.MethodPost, "https://api.test/v1/stream", nil)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(data)), -1
	resp, err := New(base).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body := <-sent
	cr, ok := body.(*captureReader)
	if !ok {
		t.Fatalf("body %T, want the capture's reader", body)
	}
	n, err := io.Copy(io.Discard, body)
	if n != int64(len(data)) || err != nil {
		t.Fatalf("sent %d bytes, %v; want %d", n, err, len(data))
	}
	cr.c.mu.Lock()
	kept := cap(cr.c.buf)
	cr.c.mu.Unlock()
	body.Close()
	if kept != 0 {
		t.Errorf("the capture keeps %d bytes of a body sent after the call ended, want 0", kept)
	}
}
