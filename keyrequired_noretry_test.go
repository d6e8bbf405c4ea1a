package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestKeyRequiredRetryHonorsNoRetry: a 400 saying that an idempotency key
// was required, to a write sent without one (a PUT, which gets none), is
// retried once under a new key, unless the server said not to retry it:
// its vendor hint (X-Should-Retry or Stripe-Should-Retry: false) or its
// envelope's "retryable": false, the strongest words of the precedence,
// which no default rule overrules (see decide, and keyHeld, which heeds
// them too). The answer is returned after one attempt, as its Permanent
// class says.
func TestKeyRequiredRetryHonorsNoRetry(t *testing.T) {
	const required = `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required"}}`
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		tries  int
	}{
		{"no word: retried with a key", nil, required, 2},
		{"X-Should-Retry: false", http.Header{"X-Should-Retry": {"false"}}, required, 1},
		{"Stripe-Should-Retry: false", http.Header{"Stripe-Should-Retry": {"false"}}, required, 1},
		{`"retryable": false`, nil, `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required","retryable":false}}`, 1},
		{`document's "retryable": false`, nil, `{"error":{"code":"idempotency_key_required"},"retryable":false}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: http.StatusBadRequest, header: tc.header, body: tc.body}, {status: http.StatusOK}}}
			tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
			resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("x")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusBadRequest
			if tc.tries == 2 {
				want = http.StatusOK
			}
			if rt.numCalls() != tc.tries || resp.StatusCode != want {
				t.Errorf("%d after %d attempts (keys %q), want %d after %d", resp.StatusCode, rt.numCalls(), rt.headers("Idempotency-Key"), want, tc.tries)
			}
		})
	}
}
