package resilient

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file holds what an error response's headers say about retrying it,
// beyond its status: a vendor's explicit retry hint, and the 403 with which
// GitHub refuses a request over its rate limit.

// retryHint returns a vendor's explicit answer to "retry this?": 1 for
// true, 0 for false, -1 when the response does not say. It reads
// Stripe-Should-Retry (Stripe), then X-Should-Retry (OpenAI, Anthropic and
// the SDKs generated like theirs); a value other than true or false (in any
// case) is ignored.
func retryHint(h http.Header) int8 {
	for _, k := range [...]string{"Stripe-Should-Retry", "X-Should-Retry"} {
		if v := h[k]; len(v) > 0 {
			switch s := strings.TrimSpace(v[0]); {
			case strings.EqualFold(s, "true"):
				return 1
			case strings.EqualFold(s, "false"):
				return 0
			}
		}
	}
	return -1
}

// rateLimited403 reports whether a 403's headers say that it refused a
// request over a rate limit rather than for a lack of permission, as
// GitHub's do: Retry-After (its secondary rate limits) or
// X-RateLimit-Remaining: 0 (its primary quota is spent).
func rateLimited403(h http.Header) bool {
	if v := h["Retry-After"]; len(v) > 0 && strings.TrimSpace(v[0]) != "" {
		return true
	}
	v := h["X-Ratelimit-Remaining"]
	return len(v) > 0 && strings.TrimSpace(v[0]) == "0"
}

// serverWait returns the wait the server asked for before a retry: its
// Retry-After, else, for a 403 classified Throttled because its quota is
// spent (X-RateLimit-Remaining: 0), the time until X-RateLimit-Reset. It
// reports false when the server gave none.
func serverWait(status int, h http.Header, cl Class, now func() time.Time) (time.Duration, bool) {
	if v := h["Retry-After"]; len(v) > 0 && v[0] != "" {
		return retryAfterOf(v[0], h, now()) // a date read against the response's Date
	}
	if status == http.StatusForbidden && cl == Throttled {
		if v := h["X-Ratelimit-Reset"]; len(v) > 0 {
			t := now()
			return resetWait(v[0], t.Add(serverSkew(h, t)))
		}
	}
	return 0, false
}

// unixSecondsFloor tells a Unix time in seconds (GitHub's reset, above it
// since 1973) from a number of seconds from now (far below it).
const unixSecondsFloor = 1e8

// resetWait returns the time from now until the reset v: digits only, a
// Unix time in seconds, or below unixSecondsFloor, seconds from now. Like a
// Retry-After, the wait is capped at maxRetryAfterSeconds (the retry loop
// gives up on a wait longer than WithMaxRetryAfter). It reports false for a
// malformed value or a reset already past.
func resetWait(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
		n = math.MaxUint64 // digits only: an absurd reset
	}
	if n < unixSecondsFloor {
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second, n > 0
	}
	if n > math.MaxInt64 || int64(n)-now.Unix() > maxRetryAfterSeconds {
		return maxRetryAfterSeconds * time.Second, true
	}
	if d := time.Unix(int64(n), 0).Sub(now); d > 0 {
		return d, true
	}
	return 0, false
}
