package resilient

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestBodyOfKnownLengthEndsWithItsLastByte: over HTTP/2, a server sends
// the end of a stream (END_STREAM) when its handler returns, which may
// be long after the body's last byte (a handler that flushes its answer,
// then goes on working) or never. net/http's HTTP/2 body yields its
// Content-Length bytes, then waits for that end; a plain client that
// decodes the body (a JSON decoder, a read of Content-Length bytes) has
// it at once. The Transport read on after the last byte, waiting for the
// end: the drain of a response retried past and the peek at an error
// envelope for maxReadWait each (2 s per attempt, and the caller's body of
// a final error answer then failed with errReadStalled), and a success's
// body read with WithBufferedResponse for the whole attempt's deadline
// (the call's 5 minute budget), which then failed the call with the
// deadline's error: a success turned into a failure. A body whose
// Content-Length bytes all came is whole: no read waits for the stream's
// end, and the server is sent each request once per attempt, the call
// taking no time of its own.
func TestBodyOfKnownLengthEndsWithItsLastByte(t *testing.T) {
	const body = `{"error":{"code":"overloaded","message":"try again"}}`
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		opts        []Option
		hits        int32
	}{
		{"a success read within the attempt", 200, "application/json", []Option{WithBufferedResponse(1 << 20)}, 1},
		{"an error envelope, peeked and drained", 503, "application/json", nil, 3},
		{"an HTML error page, drained", 503, "text/html", nil, 3},
		{"a final error envelope, peeked", 400, "application/json", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				release := make(chan struct{})
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithTLS(),
					resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						hits.Add(1)
						w.Header().Set("Content-Type", tc.contentType)
						w.Header().Set("Content-Length", strconv.Itoa(len(body)))
						w.WriteHeader(tc.status)
						io.WriteString(w, body)
						w.(http.Flusher).Flush()
						select { // the stream stays open
						case <-r.Context().Done():
						case <-release:
						}
					})))
				defer srv.Close()
				defer close(release)
				tr := New(srv.Transport(), append([]Option{WithMaxRetries(2), WithBackoff(0, 0)}, tc.opts...)...)
				start := time.Now()
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				took := time.Since(start)
				if err != nil {
					t.Fatalf("after %v: %v; want the %d, its body whole", took, err, tc.status)
				}
				got := make([]byte, len(body))
				n, rerr := io.ReadFull(resp.Body, got)
				resp.Body.Close()
				if resp.StatusCode != tc.status || rerr != nil || string(got) != body {
					t.Errorf("status %d, body %q, %v; want %d, %q, <nil>", resp.StatusCode, got[:n], rerr, tc.status, body)
				}
				if took != 0 || hits.Load() != tc.hits {
					t.Errorf("the call took %v and sent %d requests; want 0s and %d: no read waits for the end of a stream whose Content-Length bytes came", took, hits.Load(), tc.hits)
				}
			})
		})
	}
}
