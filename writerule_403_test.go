package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestWriteRuleRetryable403IsNoProof: a 403 proves a write unprocessed only
// when it refused it over a rate limit (classified Throttled, as GitHub's
// are); one made retryable otherwise (a vendor's Stripe-Should-Retry: true,
// a Classifier's Transient) may have followed the write's processing, and a
// write to a host not known to deduplicate by key is not resent after it:
// the 403 is returned after 1 attempt, with StopUnsafeWrite. To a host
// named by WithKeyHonoringHosts, it is resent.
func TestWriteRuleRetryable403IsNoProof(t *testing.T) {
	transient403 := WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			return Transient
		}
		return def
	})
	for _, tc := range []struct {
		name     string
		header   http.Header
		opts     []Option
		attempts int
	}{
		{name: "Stripe-Should-Retry: true", header: http.Header{"Stripe-Should-Retry": {"true"}}, attempts: 1},
		{name: "a Classifier's Transient", opts: []Option{transient403}, attempts: 1},
		{name: "a Classifier's Transient, key-honoring host", opts: []Option{transient403, WithKeyHonoringHosts("api.test")}, attempts: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: 403, header: tc.header}, {status: 201}}}
			var atts []Attempt
			opts := append([]Option{fastRetries, WithoutRateLimit(), WithoutBreaker(), WithObserver(func(a Attempt) { atts = append(atts, a) })}, tc.opts...)
			resp, err := roundTrip(t, New(s, opts...), newRequest(t, t.Context(), "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s.numCalls() != tc.attempts {
				t.Fatalf("%d after %d attempts, want %d attempts", resp.StatusCode, s.numCalls(), tc.attempts)
			}
			if tc.attempts == 1 && (resp.StatusCode != 403 || atts[0].StopReason != StopUnsafeWrite) {
				t.Errorf("%d, stop reason %q; want the 403, %q", resp.StatusCode, atts[0].StopReason, StopUnsafeWrite)
			}
		})
	}
}
