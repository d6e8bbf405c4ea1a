package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// cloningBase is a base RoundTripper that sends a copy of each request it
// is given, made with Request.Clone and a header of its own, as an SDK's
// transport that sets its User-Agent, or a signing one, does: net/http
// makes that copy the response's Request.
func cloningBase() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r2 := r.Clone(r.Context())
		r2.Header.Set("User-Agent", "sdk/1.0")
		return http.DefaultTransport.RoundTrip(r2)
	})
}

// TestBaseCopyResponseRequestCarriesNoAttemptKey: under a base that sends
// a copy of its own (cloningBase), the response's Request is that copy, as
// under a plain client over that base; but it must not carry what the
// Transport put on its attempt: the key it drew for the write, which the
// caller's next write, cloned from resp.Request (to another body, or the
// next page), would carry too, and which a host that deduplicates by key
// answers with the first write's stored response (the second write lost
// while the caller sees a success; the key taken for the caller's word),
// nor the attempt's context, which ends with the response's body. A plain
// client over that base processes both writes.
func TestBaseCopyResponseRequestCarriesNoAttemptKey(t *testing.T) {
	for _, name := range []string{"plain", "resilient"} {
		t.Run(name, func(t *testing.T) {
			store := &keyStore{stored: map[string]string{}}
			srv := httptest.NewServer(store)
			defer srv.Close()
			rt := cloningBase()
			if name == "resilient" {
				rt = New(rt)
			}
			cl := &http.Client{Transport: rt}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/posts", strings.NewReader(`{"n":1}`))
			req.Header.Set("X-Caller", "mine")
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			got := resp.Request
			if got.Header.Get("User-Agent") != "sdk/1.0" || got.Header.Get("X-Caller") != "mine" {
				t.Errorf("resp.Request header %v; want the base's copy of the caller's (User-Agent sdk/1.0, X-Caller mine)", got.Header)
			}
			for k := range got.Header {
				if strings.Contains(strings.ToLower(k), "idempotency") {
					t.Errorf("resp.Request carries %s: %q, a key the caller never set", k, got.Header[k])
				}
			}
			if err := got.Context().Err(); err != nil {
				t.Errorf("resp.Request's context ended with the response's body: %v", err)
			}

			// The caller's next write, cloned from resp.Request, another
			// body.
			next := got.Clone(context.Background())
			next.Body = io.NopCloser(strings.NewReader(`{"n":2}`))
			next.GetBody, next.ContentLength = nil, 7
			resp2, err := cl.Do(next)
			if err != nil {
				t.Fatalf("second write: %v", err)
			}
			b, _ := io.ReadAll(resp2.Body)
			resp2.Body.Close()
			store.mu.Lock()
			defer store.mu.Unlock()
			if len(store.processed) != 2 {
				t.Errorf("second write answered %d %s; server processed %d writes, want 2 (keys %q)", resp2.StatusCode, b, len(store.processed), store.keys)
			}
		})
	}
}

// TestBaseCopyResponseRequestKeepsCallersKey: the caller's own key, which
// the caller set on its request, stays on the base's copy, as the caller
// set it; a Report's Attempt says which key each attempt carried.
func TestBaseCopyResponseRequestKeepsCallersKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))
	defer srv.Close()
	tr := New(cloningBase(), WithIdempotencyHeader("X-Request-Key"), WithAttemptHeader("X-Attempt"))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/posts", strings.NewReader(`{}`))
	req.Header.Set("Idempotency-Key", "caller-1")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Request.Header
	if got := h.Get("Idempotency-Key"); got != "caller-1" {
		t.Errorf("resp.Request Idempotency-Key %q, want the caller's caller-1", got)
	}
	if got := h.Values("X-Request-Key"); len(got) != 0 {
		t.Errorf("resp.Request X-Request-Key %q, want none (the caller set none)", got)
	}
	if got := h.Values("X-Attempt"); len(got) != 0 {
		t.Errorf("resp.Request X-Attempt %q, want none (the caller set none)", got)
	}
	if h.Get("User-Agent") != "sdk/1.0" {
		t.Errorf("resp.Request header %v; want the base's copy (User-Agent sdk/1.0)", h)
	}
	if resp.Request.Context() != req.Context() {
		t.Error("resp.Request's context is not the caller's")
	}
}
