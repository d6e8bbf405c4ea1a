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

// TestHTTP2TrailersAfterKnownLength: over HTTP/2, a body of known length
// may be followed by trailers the server declared (a checksum, a status),
// which net/http fills in resp.Trailer as the body's Read returns io.EOF,
// with the end of the stream: a plain client that reads the body to its
// end has them, however long after the last byte they come. The readers
// that stop at an HTTP/2 body's last byte (see endsAtLength) closed it
// there: a success read with WithBufferedResponse, and a 503 retried past
// then returned on a give-up, reached the caller with the trailers'
// values empty. Such a body's end is read: by the caller, for a success
// read within the attempt, which RoundTrip returns without waiting for it
// (the attempt's deadline does not cut it); by the drain (bounded as
// ever), for a response retried past.
func TestHTTP2TrailersAfterKnownLength(t *testing.T) {
	const body = `{"data":{"id":"p_1"}}`
	for _, tc := range []struct {
		name   string
		status int
		late   time.Duration // from the body's last byte to the trailers
		opts   []Option
		took   time.Duration // RoundTrip's time
	}{
		{"a success read within the attempt", 200, 0, []Option{WithBufferedResponse(1 << 20)}, 0},
		{"a success read within the attempt, trailers late", 200, 5 * time.Second, []Option{WithBufferedResponse(1 << 20), WithAttemptTimeout(time.Second)}, 0},
		{"a success handed over", 200, 0, nil, 0},
		{"a final error envelope, peeked", 400, 0, nil, 0},
		{"an error retried past, then returned", 503, 0, []Option{WithMaxElapsed(10 * time.Second)}, 10 * time.Second},
		{"an error retried past, trailers late, then returned", 503, time.Second, []Option{WithMaxElapsed(10 * time.Second)}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithTLS(),
					resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if hits.Add(1) > 1 {
							<-r.Context().Done() // the call's budget ends it
							return
						}
						w.Header().Set("Content-Type", "application/json")
						w.Header().Set("Content-Length", strconv.Itoa(len(body)))
						w.Header().Set("Trailer", "X-Checksum")
						w.WriteHeader(tc.status)
						io.WriteString(w, body)
						w.(http.Flusher).Flush()
						time.Sleep(tc.late)
						w.Header().Set("X-Checksum", "abc123")
					})))
				defer srv.Close()
				tr := New(srv.Transport(), append([]Option{WithMaxRetries(2), WithBackoff(0, 0)}, tc.opts...)...)
				start := time.Now()
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				if took := time.Since(start); took != tc.took {
					t.Errorf("RoundTrip took %v, want %v", took, tc.took)
				}
				if err != nil {
					t.Fatalf("RoundTrip: %v; want the %d", err, tc.status)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || resp.ProtoMajor != 2 {
					t.Fatalf("status %d over HTTP/%d, want %d over HTTP/2", resp.StatusCode, resp.ProtoMajor, tc.status)
				}
				if string(got) != body || rerr != nil {
					t.Errorf("body = %q, %v; want %q, <nil>", got, rerr, body)
				}
				if v := resp.Trailer.Get("X-Checksum"); v != "abc123" {
					t.Errorf("Trailer X-Checksum = %q, want %q, as a plain client reads it", v, "abc123")
				}
			})
		})
	}
}
