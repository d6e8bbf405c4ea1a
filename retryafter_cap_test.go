package resilient

import (
	"testing"
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
