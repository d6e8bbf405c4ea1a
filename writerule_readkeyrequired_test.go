package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestWriteRuleReadKeyRequiredTeachesNothing: a read sent no key, so an
// answer to it that says a key is required (a 400 or 428 whose code or
// message speaks of a missing idempotency key) says nothing of how the
// host deduplicates writes: a proxy's, another route's, an echo of a stored
// error, as a read's idempotency codes (see TestWriteRuleLearnsFromReads).
// The read is retried once with a key, as the README says, but the host is
// not learned: a later POST it processes and answers 502 is returned after
// one attempt, as a plain client returns it. (Taught by the read, the
// Transport resent the write, and a host that ignores keys stored it twice.)
func TestWriteRuleReadKeyRequiredTeachesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"code", rtStep{status: 400, body: `{"error":{"code":"idempotency_key_required","message":"no"}}`}},
		{"message", rtStep{status: 400, body: `{"error":{"code":"bad_request","message":"An Idempotency-Key header is required."}}`}},
		{"problem of the draft", rtStep{status: 428, body: `{"type":"https://example.com/probs/idempotency","title":"Idempotency-Key is missing"}`,
			header: http.Header{"Content-Type": {"application/problem+json"}}}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{tc.step, {status: 200}, {status: 502}, {status: 201}}}
				tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
				resp, err := roundTrip(t, tr, newRequest(t, t.Context(), method, "https://api.example.com/v1/posts/1", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || rt.numCalls() != 2 {
					t.Fatalf("the read got %d after %d attempts, want 200 after 2 (one retry with a key)", resp.StatusCode, rt.numCalls())
				}
				resp, err = roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader(`{"text":"hi"}`)))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 502 || rt.numCalls() != 3 {
					t.Errorf("the write got %d after %d attempts in all, want 502 after 3: a read's answer that a key is required taught the host", resp.StatusCode, rt.numCalls())
				}
			})
		}
	}
}
