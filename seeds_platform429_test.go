package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestSeedsPlatform429IsNotARefusal: a 429 that carries a Postato platform
// error ("origin":"platform", a postId, "status":"failed") answers a post
// the host took, with the social network's throttle on it, as the 403 of
// TestSeedsPlatform403WithQuotaHeadersIsNotARateLimit does: it proves
// nothing of the write unprocessed, whatever its status. The write rule
// read every 429 as a refusal, and resent the POST, to a host not known to
// deduplicate by key, after its Retry-After: a second post. A 429 without
// one (Postato's own rate limit) is still resent. The post to a host named
// as honoring keys is not resent either: the answer is its key's, which a
// resend under the same key gets again (TestPlatformErrorOfKeyedWriteNotResent).
func TestSeedsPlatform429IsNotARefusal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		named     bool
		wantCalls int
		stop      StopReason
	}{
		{"platform error", platformThrottled(""), false, 1, StopUnsafeWrite},
		{"platform error, retryable true", platformThrottled("true"), false, 1, StopUnsafeWrite},
		{"platform error, retryable false", platformThrottled("false"), false, 1, ""},
		{"the host's own 429", `{"error":"RATE_LIMITED","message":"slow down"}`, false, 2, ""},
		{"platform error, named host", platformThrottled(""), true, 1, StopUnsafeWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"1"}}, body: tc.body}, {status: 201}, {status: 201}}}
				var attempts []Attempt
				opts := []Option{WithObserver(func(a Attempt) { attempts = append(attempts, a) })}
				if tc.named {
					opts = append(opts, WithKeyHonoringHosts("api.postato.test"))
				}
				tr := New(s, opts...)
				body := strings.NewReader(`{"content":"hello","platforms":["instagram"]}`)
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "https://api.postato.test/v1/posts", body))
				resp.Body.Close()
				want := 201
				if tc.wantCalls == 1 {
					want = 429
				}
				if a := attempts[0]; resp.StatusCode != want || s.numCalls() != tc.wantCalls || a.StopReason != tc.stop {
					t.Fatalf("the write got %d after %d attempts (creates), class %v, stop %q; want %d after %d, stop %q",
						resp.StatusCode, s.numCalls(), a.Class, a.StopReason, want, tc.wantCalls, tc.stop)
				}
			})
		})
	}
}
