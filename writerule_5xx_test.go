package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestWriteRuleServerErrorTeachesNothing: a 5xx whose code speaks of
// idempotency is the host failing, not its word that it deduplicates by
// key: a host whose key store is down (it processed the write, then could
// not record its key) answers 503 idempotency_store_unavailable, and
// processes the same write again under the same key. The write is
// returned after one attempt, as a plain client returns it, with
// StopUnsafeWrite, and the host is not learned: a later write's 502 is
// not resent either. Taken for a host that deduplicates, it was created
// twice. (A 5xx that says the key is held, a conflict, still teaches the
// host: TestRetryMethodSafety.)
func TestWriteRuleServerErrorTeachesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"503 idempotency_store_unavailable", rtStep{status: 503, body: `{"error":{"code":"idempotency_store_unavailable","message":"try again"}}`}},
		{"500 idempotency_error", rtStep{status: 500, body: `{"error":{"code":"idempotency_error","message":"could not record the key"}}`}},
		{"502 IdempotencyNotImplemented", rtStep{status: 502, body: `{"error":{"code":"IdempotencyNotImplemented","message":"no"}}`}},
		{"500 problem of the draft", rtStep{status: 500, body: `{"type":"https://example.com/probs/idempotency","title":"key store down"}`,
			header: http.Header{"Content-Type": {"application/problem+json"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{tc.step, {status: 201}, {status: 502}, {status: 201}}}
			var atts []Attempt
			tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker(), WithObserver(func(a Attempt) { atts = append(atts, a) }))
			post := func() *http.Response {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader(`{"content":"hello"}`))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			if resp := post(); resp.StatusCode != tc.step.status || rt.numCalls() != 1 {
				t.Fatalf("the write got %d after %d attempts (creates), want %d after 1", resp.StatusCode, rt.numCalls(), tc.step.status)
			}
			if got := atts[len(atts)-1].StopReason; got != StopUnsafeWrite {
				t.Errorf("stop reason %q, want %q", got, StopUnsafeWrite)
			}
			rt.steps = rt.steps[2:]
			rt.calls = nil
			if resp := post(); resp.StatusCode != 502 || rt.numCalls() != 1 {
				t.Errorf("a later write got %d after %d attempts, want 502 after 1: the host was learned from a 5xx", resp.StatusCode, rt.numCalls())
			}
		})
	}
}
