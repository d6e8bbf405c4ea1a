package resilient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestKeyedPutHoldsAgainstNetHTTPResend: a PUT or DELETE that
// WithIdempotencyMethods gives a key (one the Transport draws, not the
// caller's word that the host deduplicates by it) is sent once under
// WithMaxRetries(0), which the README gives a route whose PUT creates anew
// so that it is sent once, as a plain client sends it. net/http's
// Transport resends on its own, inside one RoundTrip, a request carrying
// an Idempotency-Key whose reused connection died after the write: the
// key goes to a host not known to honor keys under its lower-case entry,
// as a write's does (see keyedHeader). Before, it went under the canonical
// name, and the server got the PUT twice while the call reported 1 attempt.
// To a host named by WithKeyHonoringHosts, net/http may resend it.
func TestKeyedPutHoldsAgainstNetHTTPResend(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		named  bool
		want   int32
	}{
		{"PUT", http.MethodPut, false, 1},
		{"DELETE", http.MethodDelete, false, 1},
		{"PUT to a named host", http.MethodPut, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var writes atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					return
				}
				io.Copy(io.Discard, r.Body)
				writes.Add(1)
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // processed, never answered
				}
			}))
			defer srv.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			opts := []Option{WithMaxRetries(0), WithIdempotencyMethods(http.MethodPost, http.MethodPatch, tc.method)}
			if tc.named {
				opts = append(opts, WithKeyHonoringHosts(strings.TrimPrefix(srv.URL, "http://")))
			}
			var keys []string
			opts = append(opts, WithObserver(func(a Attempt) { keys = append(keys, a.IdempotencyKey) }))
			client := &http.Client{Transport: New(base, opts...)}
			resp, err := client.Get(srv.URL) // opens the connection the write reuses
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+"/v1/items/1", strings.NewReader(`{"name":"once"}`))
			if resp, err = client.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the write succeeded against a server that never answers it")
			}
			if len(keys) != 2 || keys[1] == "" {
				t.Fatalf("attempts' keys %q, want the write's one attempt keyed", keys)
			}
			if n := writes.Load(); n != tc.want {
				t.Fatalf("the server got the %s %d times (1 attempt reported), want %d", tc.method, n, tc.want)
			}
		})
	}
}
