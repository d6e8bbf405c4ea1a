package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestWriteRule408: a 408 (Request Timeout) is Transient, and the write
// rule decides whom it is resent to. RFC 9110 lets a client repeat a
// request a 408 answered, and a read is retried; but the 408 may come from
// a proxy or a server that had begun to act on the request, so it is no
// proof that a write was not processed (DESIGN.md: "Anywhere else it is
// resent only when provably unprocessed (429, refused dial, nothing
// written)"): a write is resent only under its key to a host that
// deduplicates by key, and Postato's "Don't retry: 4xx except 429"
// (postato-error-handling.txt) holds for its writes. Elsewhere the 408 is
// returned at once, with StopUnsafeWrite.
func TestWriteRule408(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		opts   []Option
		tries  int
		stop   StopReason
	}{
		{"GET", "GET", nil, 2, ""},
		{"POST, a host not known to honor keys", "POST", nil, 1, StopUnsafeWrite},
		{"PATCH, a host not known to honor keys", "PATCH", nil, 1, StopUnsafeWrite},
		{"POST, a host named as honoring keys", "POST", []Option{WithKeyHonoringHosts("api.test")}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: http.StatusRequestTimeout}, {status: 200}}}
				var attempts []Attempt
				tr := New(s, append(tc.opts, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))...)
				var body io.Reader
				if tc.method != "GET" {
					body = strings.NewReader(`{"content":"hello"}`)
				}
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), tc.method, "https://api.test/v1/posts", body))
				resp.Body.Close()
				if a := attempts[0]; a.Class != Transient || s.numCalls() != tc.tries || a.StopReason != tc.stop {
					t.Fatalf("class = %v after %d attempts, stop %q; want %v after %d, stop %q", a.Class, s.numCalls(), a.StopReason, Transient, tc.tries, tc.stop)
				}
				if tc.tries == 2 && tc.method != "GET" {
					if k0, k1 := wireHeader(s.call(0).header, "Idempotency-Key"), wireHeader(s.call(1).header, "Idempotency-Key"); k0 == "" || k0 != k1 {
						t.Errorf("keys %q, %q; want one key on both attempts", k0, k1)
					}
				}
			})
		})
	}
}
