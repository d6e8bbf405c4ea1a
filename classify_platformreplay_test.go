package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestPlatformErrorOfKeyedWriteNotResent: Postato honors an
// Idempotency-Key on POST /posts ("a repeated key returns the first
// response, and the social network is called once"), and a post that
// failed at the social network comes back with a platform-origin error
// whose retryable flag "tells you whether resubmitting (with the same or
// different media) could succeed" (postato-error-handling.txt): a new
// post, under a new key. The Transport resent such a keyed write, its
// flag true, with the same key, five times over 25 seconds of backoff:
// each resend got the first answer again, and spent the tenant's post
// quota, where a plain client returns it at once. The answer of a host
// that took the post is its key's stored answer (see keyHeld): a write
// that gets one is not resent, whatever its flag says of resubmitting,
// which stays the caller's to read (APIError.Retryable). A read whose
// answer carries one is still retried on its flag.
func TestPlatformErrorOfKeyedWriteNotResent(t *testing.T) {
	const failed = `{"error":{"origin":"platform","code":"UPSTREAM_BUSY","message":"Instagram is busy","retryable":true}}`
	for _, tc := range []struct {
		name   string
		status int
		key    string // the caller's key; "" for the Transport's
		opts   []Option
	}{
		{"caller's key, 422", http.StatusUnprocessableEntity, "post-1", nil},
		{"caller's key, 502", http.StatusBadGateway, "post-1", nil},
		{"host named, Transport's key", http.StatusUnprocessableEntity, "", []Option{WithKeyHonoringHosts("api.postato.test")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: tc.status, body: failed}}}
				var attempts []Attempt
				opts := append([]Option{WithObserver(func(a Attempt) { attempts = append(attempts, a) })}, tc.opts...)
				tr := New(s, opts...)
				req := newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/posts", strings.NewReader(`{"content":"hello","platforms":["instagram"]}`))
				if tc.key != "" {
					req.Header.Set(DefaultIdempotencyHeader, tc.key)
				}
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				e := ParseError(resp)
				resp.Body.Close()
				if n := s.numCalls(); n != 1 || resp.StatusCode != tc.status {
					t.Errorf("%d after %d sends of key %v; want the %d after 1", resp.StatusCode, n, s.headers(DefaultIdempotencyHeader), tc.status)
				}
				if a := attempts[len(attempts)-1]; a.Class != Transient || a.StopReason != StopUnsafeWrite || e == nil || !e.Retryable {
					t.Errorf("last attempt: class %v, stop %q, APIError %+v; want Transient (its flag: a resubmission may succeed), %q", a.Class, a.StopReason, e, StopUnsafeWrite)
				}
			})
		})
	}
	t.Run("a read is retried on its flag", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: http.StatusBadGateway, body: failed}, {status: http.StatusOK}}}
			resp, err := roundTrip(t, New(s), newRequest(t, context.Background(), http.MethodGet, "https://api.postato.test/v1/posts/pst_1", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || s.numCalls() != 2 {
				t.Errorf("%d after %d attempts, want 200 after 2", resp.StatusCode, s.numCalls())
			}
		})
	})
}
