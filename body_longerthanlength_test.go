package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestBodyLongerThanContentLength: a base that is not net/http (a
// decompressing middleware that keeps the compressed size, a recorder
// replaying a stale header, a mock) may hand out a body longer than its
// ContentLength, in pieces; a plain client over it reads every byte.
// Reading stopped where a piece ended at ContentLength bytes (as
// net/http's HTTP/2 body ends there): a success read with
// WithBufferedResponse was handed over truncated, with no error, and an
// error envelope past that length was not seen (a 400 whose code is
// Transient was not retried). The caller gets every byte, as a plain
// client would, and the envelope is read whole.
func TestBodyLongerThanContentLength(t *testing.T) {
	const head = `{"error":{"message":"the service is busy",`
	const tail = `"code":"service_unavailable"}}`
	for _, tc := range []struct {
		name   string
		status int
		opts   []Option
		calls  int
	}{
		{"a success read within the attempt", 200, []Option{WithBufferedResponse(1 << 20)}, 1},
		{"an error envelope past the length", 400, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &rtScript{steps: []rtStep{{
					status: tc.status,
					header: http.Header{"Content-Type": {"application/json"}},
					rc: func() io.ReadCloser {
						return io.NopCloser(io.MultiReader(strings.NewReader(head), strings.NewReader(tail)))
					},
					length: int64(len(head)), // the first piece's: the body is longer
				}}}
				plain, err := base.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/v1/posts", nil))
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := io.ReadAll(plain.Body); string(got) != head+tail {
					t.Fatalf("a plain client reads %q; want %q", got, head+tail)
				}
				tr := New(base, append([]Option{WithMaxRetries(2), WithBackoff(0, 0)}, tc.opts...)...)
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/v1/posts", nil))
				if err != nil {
					t.Fatalf("%v; want the %d", err, tc.status)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != head+tail || rerr != nil {
					t.Errorf("status %d: read %q, %v; want %q, <nil>, as a plain client over this base reads", resp.StatusCode, got, rerr, head+tail)
				}
				if n := base.numCalls() - 1; n != tc.calls {
					t.Errorf("the call sent %d attempts; want %d", n, tc.calls)
				}
			})
		})
	}
}
