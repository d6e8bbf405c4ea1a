package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestPlatformErrorTeachesNothingOfKeys: a Postato platform error's code is
// the social network's, never the host's (see decide), and Postato honors
// keys on POST /posts only. A post under a key the Transport drew,
// answered with a platform error whose code spoke of an idempotency
// conflict (the social network's own key in use), taught the Transport
// that the host deduplicates every write by key: its next write to another
// route (a webhook, which Postato processes anew under a repeated key),
// answered 503, was resent, and created twice, where a plain client sends
// it once. The host's own idempotency conflict still teaches.
func TestPlatformErrorTeachesNothingOfKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		sends int // of the second write
	}{
		{"platform error", `{"error":{"origin":"platform","code":"IDEMPOTENCY_CONFLICT","message":"Threads: a post with this idempotency key is in progress"}}`, 1},
		{"the host's own conflict", `{"error":{"code":"IDEMPOTENCY_CONFLICT","message":"a request with this key is in progress"}}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{
					{status: http.StatusConflict, body: tc.body},
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
				req = newRequest(t, context.Background(), http.MethodPost, "https://api.postato.test/v1/webhooks", strings.NewReader(`{"url":"https://example.com/hook"}`))
				resp, err = roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if n := s.numCalls() - 1; n != tc.sends {
					t.Errorf("the webhook write got %d after %d sends; want %d sends", resp.StatusCode, n, tc.sends)
				}
			})
		})
	}
}
