package resilient

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryAfterDateCapped checks that a Retry-After date centuries ahead
// asks for the same capped wait as delay-seconds does: it was the largest
// Duration, which the retry loop's jitter (retryAfterSpread) added to it
// overflows into a negative delay, raised to the backoff's base, under
// WithMaxRetryAfter(math.MaxInt64): a retry at once where the server asked
// for none before the year 7000.
func TestRetryAfterDateCapped(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	const max = maxRetryAfterSeconds * time.Second
	for _, v := range []string{"Tue, 01 Feb 7000 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "99999999999999999999"} {
		if d, ok := parseRetryAfter(v, now); !ok || d != max {
			t.Errorf("parseRetryAfter(%q) = %v, %v, want %v, true", v, d, ok, max)
		}
		if d := max + time.Second; d < 0 {
			t.Fatalf("the cap plus a second of jitter overflows: %v", d)
		}
	}
}

// TestResetWaitCapped checks that a throttled answer without a Retry-After
// whose quota reset lies centuries ahead asks for no shorter a wait than
// the same reset as a Retry-After does. The wait until the reset was the
// largest Duration, which the retry loop's jitter overflows into a
// negative delay, raised to the backoff's base, under
// WithMaxRetryAfter(math.MaxInt64): a retry half a second later, five of
// them, where the server asked for none before the year 9999. With the
// rate limiter and without it (the classifier reads the reset then).
func TestResetWaitCapped(t *testing.T) {
	for _, reset := range []string{"9999-12-31T23:59:59Z", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		for _, limiter := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/limiter=%v", reset, limiter), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{
						"X-Ratelimit-Limit":     {"60"},
						"X-Ratelimit-Remaining": {"0"},
						"X-Ratelimit-Reset":     {reset},
					}}}}
					opts := []Option{WithMaxRetryAfter(math.MaxInt64), WithoutBreaker()}
					if !limiter {
						opts = append(opts, WithoutRateLimit())
					}
					resp, _ := roundTrip(t, New(s, opts...), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					resp.Body.Close()
					if n := s.numCalls(); n != 1 {
						t.Errorf("reset %q, rate limiter %v: %d attempts, %v apart; want 1: the wait passes the call's budget",
							reset, limiter, n, s.call(n-1).at.Sub(s.call(0).at))
					}
				})
			})
		}
	}
}
