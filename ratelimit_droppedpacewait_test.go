package resilient

import (
	"net/http"
	"testing"
	"time"
)

// TestRateLimitDroppedPaceWakesItsWaiters: a host announced its policy
// once (60 in 50 minutes), then, for more than MaxBelievedReset, a quota
// in use (1 left) without a reset nor the policy: the window learned
// stays, and paces the host at a turn every 53 seconds. Call A takes the
// turn; call B, a second later, waits for the next one. A's answer, late,
// says 59 left, still without a reset: the window no reset confirms is
// dropped, and its pace with it (update). B, which waited for a turn of
// that pace, goes then, as a call made after the answer does, not at the
// turn of a pace no longer known (up to WithMaxRetryAfter later).
func TestRateLimitDroppedPaceWakesItsWaiters(t *testing.T) {
	checkLateAnswerWakesWaiter(t, func(h http.Header, path string, n int) {
		h.Set("RateLimit-Limit", "60")
		switch path {
		case "/a":
			h.Set("RateLimit-Remaining", "59")
		default:
			h.Set("RateLimit-Remaining", "1")
			if n == 0 {
				h.Set("RateLimit-Policy", "60;w=3000")
			}
		}
	}, func(t *testing.T, client *http.Client) {
		for range 8 { // a call every ten minutes: the quota in use
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("call: %d, %v", code, err)
			}
			time.Sleep(10 * time.Minute)
		}
	})
}
