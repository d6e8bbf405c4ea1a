package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestPlatformErrorOfKeylessWriteNotResentWithKey: a Postato platform
// error is the social network's verdict on a post the host took and
// finished, its code and message the platform's, never the host's
// (TestPlatformErrorOfKeyedWriteNotResent). A keyless write (POST, its
// automatic key turned off by WithIdempotencyMethods) answered with one
// whose code or message speaks of a missing idempotency key was taken for
// the host's refusal of a request without a key, and resent at once under
// a new key, past the write rule: a second post, where a plain client
// returns the answer. The host's own answer that a key is required is
// still retried once with one.
func TestPlatformErrorOfKeylessWriteNotResentWithKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		calls  int
	}{
		{"platform code", http.StatusBadRequest, `{"error":{"origin":"platform","code":"IDEMPOTENCY_KEY_REQUIRED","message":"Threads rejected the post"}}`, 1},
		{"platform message", http.StatusPreconditionRequired, `{"error":{"origin":"platform","code":"UPLOAD_REJECTED","message":"Threads: an idempotency key is required for this upload"}}`, 1},
		{"the host's own", http.StatusBadRequest, `{"error":{"code":"IDEMPOTENCY_KEY_REQUIRED","message":"send an Idempotency-Key"}}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: tc.status, body: tc.body}, {status: http.StatusCreated}}}
				tr := New(s, WithIdempotencyMethods(http.MethodPatch))
				req := newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/posts", strings.NewReader(`{"content":"hello","platforms":["threads"]}`))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := http.StatusCreated
				if tc.calls == 1 {
					want = tc.status
				}
				if n := s.numCalls(); n != tc.calls || resp.StatusCode != want {
					t.Errorf("%d after %d sends (keys %q); want %d after %d", resp.StatusCode, n, s.headers(DefaultIdempotencyHeader), want, tc.calls)
				}
			})
		})
	}
}
