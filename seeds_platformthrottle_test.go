package resilient

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// platformThrottled is Postato's platform-origin error (its shape in
// postato-error-handling.txt) for a post the social network throttled:
// the code is the platform's, and retryable, when present, says whether
// resubmitting could succeed.
func platformThrottled(retryable string) string {
	r := ""
	if retryable != "" {
		r = `,"retryable":` + retryable
	}
	return `{"postId":"pst_1","status":"failed","error":{"origin":"platform","code":"RATE_LIMITED","message":"Instagram rejected: too many posts","platformRawCode":"4"` + r + `}}`
}

// TestSeedsPlatformThrottleIsNotTheHosts: Postato says that "Posts that
// fail at the social network surface as post.failed with a structured
// error" whose origin is "platform", that its "retryable tells you whether
// resubmitting (with the same or different media) could succeed. Trust it:
// our post worker already did its own retry logic for transient platform
// errors before marking the post failed.", and "Don't retry: 4xx except
// 429" (postato-error-handling.txt). A 403 carrying such an error whose
// platform code reads as a rate limit (RATE_LIMITED) is the social
// network's word on the post Postato already took, not Postato refusing
// the request over its own rate limit: it is not Throttled. So it pauses
// none of the host's other calls, and has no write resent as one provably
// not processed; its class is its status's (Permanent), or what its
// retryable flag says (true: Transient, which a write to a host not known
// to deduplicate by key does not resend). Before, the platform's code made
// it Throttled: a read was retried, and the POST resent, as provably
// unprocessed, to a host that may ignore its key.
func TestSeedsPlatformThrottleIsNotTheHosts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		retryable string
		class     Class
		tries     int
	}{
		{"GET, retryable not said", "GET", "", Permanent, 1},
		{"GET, retryable false", "GET", "false", Permanent, 1},
		{"GET, retryable true", "GET", "true", Transient, 2},
		{"POST, retryable not said", "POST", "", Permanent, 1},
		{"POST, retryable true", "POST", "true", Transient, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 403, body: platformThrottled(tc.retryable)}, {status: 200}, {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				var body io.Reader
				if tc.method == "POST" {
					body = strings.NewReader(`{"content":"hello","platforms":["instagram"]}`)
				}
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), tc.method, "https://api.postato.test/v1/posts", body))
				resp.Body.Close()
				if a := attempts[0]; a.Class != tc.class || s.numCalls() != tc.tries {
					t.Fatalf("class = %v after %d attempts (stop %q), want %v after %d", a.Class, s.numCalls(), a.StopReason, tc.class, tc.tries)
				}
				// Another call to the host goes at once: the platform's
				// throttle paused nothing of Postato's.
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
