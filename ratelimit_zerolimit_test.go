package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitZeroLimitOnSuccessNotBelieved: a success that announces a
// limit of 0 (several APIs send it for a quota that is not metered)
// contradicts itself, having answered the request it says it allows none
// of: its quota is not believed, in any family, and ten calls get ten
// answers at once, as a plain client's do. Each call waited for the reset
// that the first success announced.
func TestRateLimitZeroLimitOnSuccessNotBelieved(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
	}{
		{"X-RateLimit", http.Header{"X-Ratelimit-Limit": {"0"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"60"}}},
		{"X-Rate-Limit", http.Header{"X-Rate-Limit-Limit": {"0"}, "X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {"60"}}},
		{"IETF structured, q=0", http.Header{"Ratelimit": {`"default";r=0;t=60`}, "Ratelimit-Policy": {`"default";q=0;w=60`}}},
		{"IETF draft 7 dictionary", http.Header{"Ratelimit": {"limit=0, remaining=0, reset=60"}}},
		{"IETF older drafts", http.Header{"Ratelimit-Limit": {"0"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"60"}}},
		{"IETF older drafts, policy q=0", http.Header{"Ratelimit-Policy": {"0;w=60"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"60"}}},
		{"OpenAI", http.Header{"X-Ratelimit-Limit-Requests": {"0"}, "X-Ratelimit-Remaining-Requests": {"0"}, "X-Ratelimit-Reset-Requests": {"1m0s"}}},
		{"Anthropic", http.Header{"Anthropic-Ratelimit-Requests-Limit": {"0"}, "Anthropic-Ratelimit-Requests-Remaining": {"0"},
			"Anthropic-Ratelimit-Requests-Reset": {"2000-01-01T00:01:00Z"}}},
		{"Shopify", http.Header{"X-Shopify-Shop-Api-Call-Limit": {"0/0"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 200, header: tc.h, body: "ok"}}}
				tr := New(s)
				start := time.Now()
				for range 10 {
					timedGet(t, tr, "http://api.test/")
				}
				if took := time.Since(start); took != 0 || s.numCalls() != 10 {
					t.Errorf("%v on every success: 10 calls took %v and %d attempts, want 0s and 10", tc.h, took, s.numCalls())
				}
			})
		})
	}
}

// TestRateLimitZeroLimitCustomParser: a limit of 0 that a
// WithRateLimitParser reads from a success is not believed either.
func TestRateLimitZeroLimitCustomParser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parser := func(h http.Header, now time.Time) (RateLimitInfo, bool) {
			if h.Get("Quota") == "" {
				return RateLimitInfo{}, false
			}
			return RateLimitInfo{Limit: 0, Remaining: 0, Reset: now.Add(time.Minute)}, true
		}
		s := &rtScript{steps: []rtStep{{status: 200, header: http.Header{"Quota": {"none"}}, body: "ok"}}}
		tr := New(s, WithRateLimitParser(parser))
		start := time.Now()
		for range 10 {
			timedGet(t, tr, "http://api.test/")
		}
		if took := time.Since(start); took != 0 || s.numCalls() != 10 {
			t.Errorf("10 calls took %v and %d attempts, want 0s and 10", took, s.numCalls())
		}
	})
}

// TestRateLimitZeroLimitStillBelievedWhenThrottledOrPositive: the rule
// drops a limit of 0 only on a response that was not throttled: a 429
// announcing a limit of 0 and its reset pauses the host until then, and a
// success announcing a positive limit with none remaining (GitHub's answer
// to the request that spent its quota) holds the next call until its
// reset.
func TestRateLimitZeroLimitStillBelievedWhenThrottledOrPositive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		limit  string
	}{
		{"429, limit 0", 429, "0"},
		{"200, limit 10", 200, "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := http.Header{"X-Ratelimit-Limit": {tc.limit}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"}}
				s := &rtScript{steps: []rtStep{{status: tc.status, header: h, body: "spent"}, {status: 200, body: "ok"}}}
				tr := New(s, WithMaxRetries(0))
				timedGet(t, tr, "http://api.test/")
				took, _ := timedGet(t, tr, "http://api.test/")
				if took < 30*time.Second || s.numCalls() != 2 {
					t.Errorf("after %d with %v: the next call took %v (%d attempts), want a wait for the reset (30s)", tc.status, h, took, s.numCalls())
				}
			})
		})
	}
}

// TestRateLimitZeroLimit403IsARefusal: a 403 whose quota has a limit of 0
// (an endpoint the caller's plan does not include) is a refusal, answered
// once as a plain client's is, not a spent quota: its reset grants no
// request, and the host's other calls are not held until then. It was
// retried after the reset, and the host paused meanwhile.
func TestRateLimitZeroLimit403IsARefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.Header{"X-Ratelimit-Limit": {"0"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"}}
		s := &rtScript{steps: []rtStep{{status: 403, header: h, body: `{"message":"not in your plan"}`}, {status: 200, body: "ok"}}}
		tr := New(s)
		resp, err := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "http://api.test/premium", nil))
		if err != nil {
			t.Fatalf("RoundTrip error = %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || s.numCalls() != 1 {
			t.Fatalf("403 with %v: got %d after %d attempts, want the 403 after 1", h, resp.StatusCode, s.numCalls())
		}
		if took, _ := timedGet(t, tr, "http://api.test/free"); took != 0 {
			t.Errorf("after a 403 with %v, the next call took %v, want 0s", h, took)
		}
	})
}
