package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCaptureReleasedWhenTheCallEnds: a request body without GetBody is
// captured while sent, up to WithMaxBufferedBody, so that a retry can
// replay it. Once RoundTrip has returned and the last attempt's body was
// sent and closed, no retry can follow, and no reader needs the bytes:
// the capture lets go of them. Before, it kept them for as long as the
// response lived (its body holds the attempt's request, whose body is the
// capture's reader): a POST of 1 MiB answered by a stream (server-sent
// events, a download) kept 1 MiB of the caller's bytes per stream, for
// the stream's life, where a plain client keeps none. A body the base
// still sends after the response (HTTP/2) is read whole first.
func TestCaptureReleasedWhenTheCallEnds(t *testing.T) {
	data := bytes.Repeat([]byte("a"), 512<<10) // within the capture's limit
	for _, tc := range []struct {
		name  string
		steps []int // the status of each attempt
		late  bool  // the base reads and closes the last attempt's body after RoundTrip returned, as HTTP/2 may
	}{
		{"first attempt", []int{200}, false},
		{"retried", []int{503, 200}, false},
		{"first attempt, sent after the response", []int{200}, true},
		{"retried, sent after the response", []int{503, 200}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []io.ReadCloser
			late := make(chan io.ReadCloser, 1)
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				n := len(sent)
				sent = append(sent, req.Body)
				status := tc.steps[n]
				if tc.late && status == 200 {
					late <- req.Body
				} else {
					io.Copy(io.Discard, req.Body)
					req.Body.Close()
				}
				// A stream the caller reads long after the call.
				return &http.Response{StatusCode: status, Header: http.Header{}, ContentLength: -1,
					Body: io.NopCloser(strings.NewReader("event")), Request: req}, nil
			})
			req := newRequest(t, context.Background(), http.MethodPut, "https://api.test/v1/stream", nil)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
			resp, err := New(base, fastRetries).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != len(tc.steps) {
				t.Fatalf("%d attempts, want %d", len(sent), len(tc.steps))
			}
			cr, ok := sent[len(sent)-1].(*captureReader)
			if !ok {
				t.Fatalf("body %T, want the capture's reader", sent[len(sent)-1])
			}
			if tc.late {
				body := <-late
				b, err := io.ReadAll(body)
				if !bytes.Equal(b, data) || err != nil {
					t.Fatalf("sent %d bytes after the response, %v; want the %d of the body", len(b), err, len(data))
				}
				body.Close()
			}
			cr.c.mu.Lock()
			kept := cap(cr.c.buf)
			cr.c.mu.Unlock()
			if kept != 0 {
				t.Errorf("with the response held, the capture keeps %d bytes of a body sent whole and closed after the call ended, want 0", kept)
			}
			if b := readBody(t, resp); b != "event" {
				t.Errorf("response %q, want %q", b, "event")
			}
		})
	}
}
