package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestKeyRequiredOfNonPlatformRetriedWithKey: the host's own answer that a key is
// required (not a Postato platform error) is still retried once under a
// key the Transport draws, an error object with an "origin" of another
// value included (a gateway's), and a Postato envelope of the host's own
// (its "error" string).
func TestKeyRequiredOfNonPlatformRetriedWithKey(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"a gateway's origin", `{"error":{"origin":"gateway","code":"IDEMPOTENCY_KEY_REQUIRED","message":"send an Idempotency-Key"}}`},
		{"Postato's own envelope", `{"error":"IDEMPOTENCY_KEY_REQUIRED","message":"an Idempotency-Key header is required"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: http.StatusBadRequest, body: tc.body}, {status: http.StatusCreated}}}
				tr := New(s, WithIdempotencyMethods(http.MethodPatch))
				req := newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/posts", strings.NewReader(`{"content":"hello"}`))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				keys := s.headers(DefaultIdempotencyHeader)
				if n := s.numCalls(); n != 2 || resp.StatusCode != http.StatusCreated || keys[0] != "" || keys[1] == "" {
					t.Errorf("%d after %d sends (keys %q); want 201 after 2, the second under a key", resp.StatusCode, n, keys)
				}
			})
		})
	}
}

// TestPlatformReplayHeaderTeaches: an Idempotent-Replayed header is
// the host's own, on a platform error too: it teaches that the host
// deduplicates by key, and its next keyed write answered 503 is resent.
// A gateway's idempotency conflict (an "origin" not "platform") teaches
// so too.
func TestPlatformReplayHeaderTeaches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
	}{
		{"replayed platform error", http.Header{"Idempotent-Replayed": {"true"}}, `{"error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"Instagram rejected"}}`},
		{"a gateway's conflict", nil, `{"error":{"origin":"gateway","code":"IDEMPOTENCY_CONFLICT","message":"a request with this key is in progress"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{
					{status: http.StatusConflict, header: tc.header, body: tc.body},
					{status: http.StatusServiceUnavailable, body: `{"error":"INTERNAL","message":"try again"}`},
					{status: http.StatusCreated},
				}}
				tr := New(s)
				req := newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/posts", strings.NewReader(`{"content":"hello"}`))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				req = newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/posts", strings.NewReader(`{"content":"again"}`))
				resp, err = roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if n := s.numCalls() - 1; n != 2 || resp.StatusCode != http.StatusCreated {
					t.Errorf("the second write got %d after %d sends; want 201 after 2", resp.StatusCode, n)
				}
			})
		})
	}
}
