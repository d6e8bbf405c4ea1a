package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestThrottled403QuotaNotSpentWaitsAMinuteAtMost: a 403 that its code
// makes Throttled while its quota is not spent (X-RateLimit-Remaining
// above 0) was throttled by another limit, and its reset, an hour away,
// says nothing of when that limit ends: its retry waits as a 429's does,
// a minute at most (unrelatedThrottle), with and without the rate
// limiter. It waited for the reset, an hour, and so was returned at once
// past WithMaxRetryAfter; serverWait reads X-RateLimit-Reset only for a
// 403 whose quota is spent.
func TestThrottled403QuotaNotSpentWaitsAMinuteAtMost(t *testing.T) {
	for _, limiter := range []bool{true, false} {
		t.Run("limiter="+strconv.FormatBool(limiter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reset := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
				h := http.Header{
					"X-Ratelimit-Limit":     {"5000"},
					"X-Ratelimit-Remaining": {"4000"},
					"X-Ratelimit-Reset":     {reset},
				}
				s := &rtScript{steps: []rtStep{
					{status: 403, header: h, body: `{"error":{"code":"rate_limited","message":"slow down"}}`},
					{status: 200, body: "second"},
				}}
				opts := []Option{WithoutRetryBudget(), withRand(func(int64) int64 { return 0 })}
				if !limiter {
					opts = append(opts, WithoutRateLimit())
				}
				var r Report
				ctx := WithReport(t.Context(), &r)
				resp, err := roundTrip(t, New(s, opts...), newRequest(t, ctx, "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatalf("RoundTrip error = %v", err)
				}
				if got := readBody(t, resp); got != "second" || s.numCalls() != 2 {
					t.Fatalf("got %q after %d attempts (stop reason %q), want a retry", got, s.numCalls(), r.StopReason)
				}
				if w := s.call(1).at.Sub(s.call(0).at); w > unrelatedThrottle {
					t.Errorf("waited %v, want %v at most", w, unrelatedThrottle)
				}
			})
		})
	}
}
