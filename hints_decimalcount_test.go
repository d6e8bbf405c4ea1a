package resilient

import (
	"net/http"
	"testing"
)

// TestRateLimited403DecimalRemaining: a 403 whose X-RateLimit-Remaining
// says 0 in a decimal spelling ("0.0", as Reddit sends its counts) refused
// the request over a spent quota, as "0" does: the rate limiter reads the
// same count (see parseCount), and the 403 is retried after the reset. A
// limit of 0 in that spelling says that nothing is to be waited for. The
// decimal 0 was compared to "0" as a string, and the 403 was returned as a
// refusal.
func TestRateLimited403DecimalRemaining(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"X-Ratelimit-Remaining": {"0.0"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {"0.0"}, "X-Ratelimit-Limit": {"600.0"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {" 0.00 "}, "X-Ratelimit-Limit": {"600"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {"0;w=60"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {"0.0"}, "X-Ratelimit-Limit": {"0.0"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"0.0"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"0.5"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"1.0"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"-0"}}, false},
	} {
		if got := rateLimited403(tc.h); got != tc.want {
			t.Errorf("rateLimited403(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}

	checkSpent403WaitsReset(t, http.Header{
		"X-Ratelimit-Used":      {"600"},
		"X-Ratelimit-Remaining": {"0.0"},
		"X-Ratelimit-Reset":     {"30"},
	})
}
