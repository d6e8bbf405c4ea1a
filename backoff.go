package resilient

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// expBackoff is the delay schedule min(maxDelay, base·2^n + jitter), with
// jitter drawn uniformly from [0, base·2^n), as a cenkalti/backoff/v4 BackOff.
//
// v4's own ExponentialBackOff cannot express this schedule: its jitter is
// multiplicative and applied after the cap. An expBackoff is stateful and is
// used by one RoundTrip only; it never returns backoff.Stop, because the retry
// budget is enforced by the retry loop.
type expBackoff struct {
	base, maxDelay time.Duration
	n              int
	rand           func(int64) int64 // uniform in [0, n); nil means math/rand/v2
}

var _ backoff.BackOff = (*expBackoff)(nil)

// WithBackOff makes each call take its delays between attempts from a
// backoff.BackOff of its own, made by newBackOff when the call first needs
// a delay (a BackOff is stateful: newBackOff must return a new one each
// time), instead of the schedule of WithBackoff. The call resets it before
// taking its first delay, as backoff.Retry does: its settings apply from
// the first retry on. For example, cenkalti's
// exponential backoff with its own settings:
//
//	resilient.WithBackOff(func() backoff.BackOff {
//		b := backoff.NewExponentialBackOff()
//		b.InitialInterval = 200 * time.Millisecond
//		return b
//	})
//
// A delay of backoff.Stop ends the call's retries (Attempt.StopReason says
// StopBackOff); WithMaxRetries, WithMaxElapsed, Retry-After (which replaces
// the delay) and the retry budget apply as with the default schedule. A
// Retry-After shorter than WithBackoff's base (500ms unless set) is raised
// to that base, not to newBackOff's delays, and spread within WithBackoff's
// cap: a BackOff of 10ms waits 500ms to 550ms after "Retry-After: 0". A nil
// newBackOff restores the default schedule, and so does a later WithBackoff
// (given to New after it, or to WithCallOptions for one call); a call whose
// newBackOff returns nil, or a nil pointer whose methods fail on it (a
// BackOff variable left unset), takes its delays from that schedule.
func WithBackOff(newBackOff func() backoff.BackOff) Option {
	return func(c *config) { c.newBackOff = newBackOff }
}

// NextBackOff returns the delay before the next retry and advances n.
func (b *expBackoff) NextBackOff() time.Duration {
	d := backoffDelay(b.base, b.maxDelay, b.n, b.rand)
	b.n++
	return d
}

// Reset restarts the schedule at n = 0.
func (b *expBackoff) Reset() { b.n = 0 }

// backoffDelay computes min(maxDelay, base·2^n + jitter) without overflowing
// for any n.
func backoffDelay(base, maxDelay time.Duration, n int, rnd func(int64) int64) time.Duration {
	if base <= 0 || maxDelay <= 0 {
		return 0
	}
	if n < 0 {
		n = 0
	}
	// base·2^n > maxDelay means the cap wins whatever the jitter. For
	// n >= 63, base·2^n (base >= 1) exceeds every Duration; below that,
	// maxDelay>>n cannot overflow and base <= maxDelay>>n keeps base<<n
	// within maxDelay.
	if n >= 63 || base > maxDelay>>uint(n) {
		return maxDelay
	}
	d := base << uint(n)
	if d >= maxDelay {
		return maxDelay
	}
	j := randN(rnd, int64(d))
	if j >= int64(maxDelay-d) {
		return maxDelay
	}
	return d + time.Duration(j)
}

// randN returns a uniform value in [0, n), or 0 when n <= 0.
func randN(rnd func(int64) int64, n int64) int64 {
	if n <= 0 {
		return 0
	}
	if rnd != nil {
		return rnd(n)
	}
	return rand.Int64N(n)
}

// retryAfterSpread is the random spread added to a server's Retry-After so
// that clients told the same instant do not all return at once: at most 10%
// of the wait and at most one second. A spread that alone would make a wait
// pass the call's deadline is not added (the retry loop and the rate
// limiter check).
func retryAfterSpread(d time.Duration, rnd func(int64) int64) time.Duration {
	s := d / 10
	if s > time.Second {
		s = time.Second
	}
	return time.Duration(randN(rnd, int64(s)+1))
}

// maxRetryAfterSeconds bounds the delay-seconds form before it is turned
// into a Duration, so that absurd values cannot overflow, and the wait an
// HTTP date asks for alike: a date in the year 7000 would otherwise be
// the largest Duration, which the jitter added to it overflows.
const maxRetryAfterSeconds = 1 << 32

// parseRetryAfter parses a Retry-After value (RFC 9110, section 10.2.3):
// either delay-seconds or an HTTP-date in any of the three formats that
// http.ParseTime accepts, in GMT (see parseHTTPDate). A date in the past
// yields 0; a wait past maxRetryAfterSeconds, in either form, is capped to
// it. It reports false for an empty, negative or unparseable value, which
// the caller ignores.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if c := v[0]; c >= '0' && c <= '9' {
		// delay-seconds is digits only: "1.5", "10s" or "5 6" are not,
		// whatever their first digits. (ParseUint alone reports an
		// overflow before it sees a later non-digit.)
		if !allDigits(v) {
			return 0, false
		}
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > maxRetryAfterSeconds {
			// Digits only, so err is an overflow: a huge wait.
			secs = maxRetryAfterSeconds
		}
		return time.Duration(secs) * time.Second, true
	}
	t, ok := parseHTTPDate(v)
	if !ok {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return min(d, maxRetryAfterSeconds*time.Second), true
	}
	return 0, true
}

// resetBackOff resets bo, and reports whether it is a BackOff: false for
// one that holds a nil pointer or func (a variable of its type left unset)
// whose Reset or NextBackOff fails on it. A nil pointer whose methods work
// without the value, as cenkalti/backoff's StopBackOff's do, holds no
// state either: its NextBackOff is tried once, and the call draws its
// delays from it all the same.
func resetBackOff(bo backoff.BackOff) (ok bool) {
	if !holdsNil(bo) {
		bo.Reset()
		return true
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	bo.Reset()
	bo.NextBackOff()
	return true
}
