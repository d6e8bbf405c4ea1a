package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestSeedsPlatform403WithQuotaHeadersIsNotARateLimit: Postato answers a
// post that failed at the social network with its platform error
// ("origin":"platform"), the post already taken (postato-error-handling.txt:
// "Posts that fail at the social network surface as post.failed with a
// structured error"; "Don't retry: 4xx except 429"). A 403 carrying one is
// no rate limit's refusal of the request, even when its headers report the
// tenant's quota spent (X-RateLimit-Remaining: 0, as the request that took
// the last unit reports it) or relay a Retry-After: the write was
// processed. Before, those headers made it Throttled, a 403 "provably
// unprocessed", and the POST was resent, to a host not known to
// deduplicate by key, after the reset: a second post. It is returned after
// one attempt, by its status (Permanent) or its retryable flag (true:
// Transient, which the write rule does not resend), and pauses none of
// the host's other calls.
func TestSeedsPlatform403WithQuotaHeadersIsNotARateLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		header    http.Header
		retryable string
		class     Class
		stop      StopReason
	}{
		{"Retry-After", http.Header{"Retry-After": {"1"}}, "", Permanent, ""},
		{"X-RateLimit-Remaining: 0", http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"}}, "", Permanent, ""},
		{"Retry-After, retryable true", http.Header{"Retry-After": {"1"}}, "true", Transient, StopUnsafeWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 403, header: tc.header, body: platformThrottled(tc.retryable)}, {status: 201}, {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				body := strings.NewReader(`{"content":"hello","platforms":["instagram"]}`)
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "https://api.postato.test/v1/posts", body))
				resp.Body.Close()
				if a := attempts[0]; resp.StatusCode != 403 || s.numCalls() != 1 || a.Class != tc.class || a.StopReason != tc.stop {
					t.Fatalf("the write got %d after %d attempts (creates), class %v, stop %q; want 403 after 1, class %v, stop %q",
						resp.StatusCode, s.numCalls(), a.Class, a.StopReason, tc.class, tc.stop)
				}
				before := time.Now()
				resp, _ = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://api.postato.test/v1/usage", nil))
				resp.Body.Close()
				if d := time.Since(before); d != 0 {
					t.Errorf("the next call waited %v, want 0", d)
				}
			})
		})
	}
}
