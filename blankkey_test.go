package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWriteRuleBlankCallerKey: a key the caller left blank (spaces, a tab)
// is sent by net/http as an empty header (it trims a value's white space
// on HTTP/1), which no host deduplicates by: it is no key, as an empty
// one is not (TestWriteRuleEmptyKeyHeader), and no word of the caller's
// that the host deduplicates. A write under it, processed and then failed
// with a 500 by a host that ignores keys, is returned after one attempt,
// as a plain client returns it, and carries a key of its own. Taken for
// the caller's key, it was resent, and stored twice.
func TestWriteRuleBlankCallerKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*http.Request) *http.Request
	}{
		{"Idempotency-Key header of a space", func(r *http.Request) *http.Request { r.Header.Set("Idempotency-Key", " "); return r }},
		{"X-Idempotency-Key header of a tab", func(r *http.Request) *http.Request { r.Header.Set("X-Idempotency-Key", "\t"); return r }},
		{"lower-case header of spaces", func(r *http.Request) *http.Request { r.Header["idempotency-key"] = []string{"  "}; return r }},
		{"WithIdempotencyKey of spaces", func(r *http.Request) *http.Request {
			return r.WithContext(WithIdempotencyKey(r.Context(), " \t "))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var keys []string // the Idempotency-Key of each POST the server processed
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				keys = append(keys, r.Header.Get("Idempotency-Key"))
				mu.Unlock()
				w.WriteHeader(http.StatusInternalServerError) // stored, then failed
			}))
			defer srv.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			var atts []Attempt
			tr := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker(), WithObserver(func(a Attempt) { atts = append(atts, a) }))
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"once"}`))
			resp, err := tr.RoundTrip(tc.set(req))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(keys) != 1 {
				t.Fatalf("the server processed the write %d times under the keys %q, want once", len(keys), keys)
			}
			if strings.TrimSpace(keys[0]) == "" {
				t.Errorf("the write reached the server with the key %q: want a key of its own", keys[0])
			}
			if got := atts[len(atts)-1].StopReason; got != StopUnsafeWrite {
				t.Errorf("stop reason %q, want %q", got, StopUnsafeWrite)
			}
		})
	}
}
