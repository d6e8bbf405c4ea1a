package resilient

import (
	"net/http"
	"slices"
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
// case) is ignored. Each field is read as Retry-After is (see
// retryAfterHeader): from the first well-formed of its first maxHintLines
// lines, a line of merged copies ("false, false") as one value, and under
// keys that are not canonical when the canonical keys say nothing.
func retryHint(h http.Header) int8 {
	if hint := retryHintCanonical(h); hint >= 0 {
		return hint
	}
	if c := canonicalHeader(h, isRetryHintName); c != nil {
		return retryHintCanonical(c)
	}
	return -1
}

// isRetryHintName reports whether k names a vendor's retry hint, in any
// spelling.
func isRetryHintName(k string) bool {
	return slices.ContainsFunc(retryHintNames(), func(n string) bool { return strings.EqualFold(k, n) })
}

// retryHintNames returns the canonical keys of the retry hints, in the
// order retryHint reads them.
func retryHintNames() []string {
	return []string{"Stripe-Should-Retry", "X-Should-Retry"}
}

// retryHintCanonical is retryHint for the canonical keys of h.
func retryHintCanonical(h http.Header) int8 {
	for _, k := range retryHintNames() {
		for _, v := range firstLines(h[k]) {
			switch s := strings.TrimSpace(oneValue(v)); {
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
// X-RateLimit-Remaining: 0 (its primary quota is spent; see quotaSpent).
// A Retry-After (or Retry-After-Ms) that does not parse ("10s", "-1") is
// ignored, as
// serverWait ignores it. X-RateLimit-Remaining: 0 beside Discord's
// X-RateLimit-Bucket says nothing of the 403: Discord sends its route
// bucket's headers with every answer and refuses over a rate limit with a
// 429 only, so that its 403 (Missing Permissions, the caller's bug) on
// the request that spent the bucket is a refusal like any other.
func rateLimited403(h http.Header) bool {
	if _, ok := retryAfterHeader(h, func() time.Time { return time.Time{} }); ok {
		return true
	}
	return quotaSpent(h) && len(h["X-Ratelimit-Bucket"]) == 0
}

// quotaSpent reports whether h says that its quota is spent:
// X-RateLimit-Remaining: 0, beside a limit that is not 0, both read as the
// rate limiter reads them (see rateHeaders.family: "0.0", Reddit's
// spelling, is 0 too, and of fields on several lines, the values of one
// line are read together). A limit of 0 says that the caller may make none
// of these requests, whatever the reset (an endpoint its plan does not
// include), or that they are not metered: nothing to wait for.
func quotaSpent(h http.Header) bool {
	_, spent := spentReset(h)
	return spent
}

// spentReset reports whether h says that its quota is spent (see
// quotaSpent) and returns the X-RateLimit-Reset lines to read beside it,
// those of the same line (see tripleLines).
func spentReset(h http.Header) (reset []string, spent bool) {
	lv, rv, sv := tripleLines(h[hdrXLimit], h[hdrXRemaining], h[hdrXReset], limitValue)
	if n, ok := firstCount(rv); !ok || n != 0 {
		return nil, false
	}
	if n, _, ok := firstLimit(lv); ok && n == 0 {
		return nil, false
	}
	return sv, true
}

// serverWait returns the wait the server asked for before a retry: its
// Retry-After (see retryAfterHeader), else, for a 403 classified Throttled
// because its quota is spent (X-RateLimit-Remaining: 0), the time until
// X-RateLimit-Reset (read as the rate limiter reads it: the first of its
// first maxHintLines lines that gives one, of those of the spent quota's
// line). It reports false when the server gave none. A 403
// throttled while its quota is not spent (by its error code or a Google
// reason) was throttled by another limit, of which that reset says
// nothing: its retry waits as a 429's does (see throttledUntil).
func serverWait(status int, h http.Header, cl Class, now func() time.Time) (time.Duration, bool) {
	if d, ok := retryAfterHeader(h, now); ok {
		return d, true
	}
	if status == http.StatusForbidden && cl == Throttled {
		if v, spent := spentReset(h); spent && len(v) > 0 {
			t := now()
			t = t.Add(serverSkew(h, t))
			for _, s := range firstLines(v) {
				if d, ok := resetWait(oneValue(s), t); ok {
					return d, true
				}
			}
		}
	}
	return 0, false
}

// retryAfterHeader returns the wait a response's headers ask for before a
// retry: a Retry-After-Ms (OpenAI's, Azure's) or X-Ms-Retry-After-Ms
// (Azure's) in milliseconds when one is well formed, as those vendors' own
// SDKs read them first, else Retry-After, in seconds or as an HTTP date read
// against the response's Date. Every value is capped as Retry-After is
// (maxRetryAfterSeconds). It reports false when none is present and well
// formed; now is read only for a Retry-After line.
//
// Each of these fields holds one value, and RFC 9110 says nothing of a
// response that repeats one: of a field given on several lines, the first
// well-formed value is read (Header.Get reads the first, well formed or
// not), so that an empty or malformed line that a proxy adds before the
// server's own ("Retry-After: " then "Retry-After: 30") does not hide the
// server's wait. Only the first maxHintLines lines of each are looked at.
// A line into which a proxy merged copies of the value ("30, 30") is read
// as that value (see oneValue). A header built by hand below the Transport
// (a stub, a cache) may hold these fields under keys that are not
// canonical ("retry-after-ms", as the vendors' documents spell it): when
// the canonical keys give no wait, they are read under their canonical
// keys (see canonicalHeader), as the rate-limit headers are (see
// canonicalRateHeaders).
func retryAfterHeader(h http.Header, now func() time.Time) (time.Duration, bool) {
	if d, ok := retryAfterCanonical(h, now); ok {
		return d, true
	}
	if c := canonicalHeader(h, isWaitName); c != nil {
		return retryAfterCanonical(c, now)
	}
	return 0, false
}

// isWaitName reports whether k names a field that holds a server's wait
// (Retry-After, Retry-After-Ms, X-Ms-Retry-After-Ms), in any spelling.
func isWaitName(k string) bool {
	return strings.EqualFold(k, "Retry-After") ||
		slices.ContainsFunc(msWaitNames(), func(n string) bool { return strings.EqualFold(k, n) })
}

// msWaitNames returns the canonical keys of the waits given in
// milliseconds, in the order retryAfterHeader reads them.
func msWaitNames() []string {
	return []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"}
}

// retryAfterCanonical is retryAfterHeader for the canonical keys of h.
func retryAfterCanonical(h http.Header, now func() time.Time) (time.Duration, bool) {
	for _, k := range msWaitNames() {
		for _, v := range firstLines(h[k]) {
			if d, ok := parseRetryAfterMs(oneValue(v)); ok {
				return d, true
			}
		}
	}
	for _, v := range firstLines(h["Retry-After"]) {
		if v == "" {
			continue
		}
		if d, ok := retryAfterOf(oneValue(v), h, now()); ok {
			return d, true
		}
	}
	return 0, false
}

// maxHintLines is how many lines of a repeated Retry-After (or
// Retry-After-Ms) retryAfterHeader reads at most, and of a repeated field
// of the rate-limit families rateHeaders.family: enough for the lines a
// proxy or two may add, and a bound on the work a response repeating the
// field thousands of times can ask for.
const maxHintLines = 4

// firstLines returns the first maxHintLines values of v.
func firstLines(v []string) []string {
	return v[:min(len(v), maxHintLines)]
}

// parseRetryAfterMs reads a number of milliseconds: digits, with an optional
// fraction ("1500", "1500.5"); a sign, an exponent, a unit or anything else
// makes it malformed. A value above maxRetryAfterSeconds is capped to it.
func parseRetryAfterMs(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	whole, frac, dot := strings.Cut(v, ".")
	if whole == "" || !allDigits(whole) || (dot && (frac == "" || !allDigits(frac))) {
		return 0, false
	}
	const maxMs = maxRetryAfterSeconds * 1000
	ms, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || ms >= maxMs {
		return maxRetryAfterSeconds * time.Second, true // digits only: err is an overflow
	}
	d := time.Duration(ms) * time.Millisecond
	// The fraction, to the nanosecond: its first six digits.
	for i, scale := 0, 100*time.Microsecond; i < len(frac) && scale > 0; i, scale = i+1, scale/10 {
		d += time.Duration(frac[i]-'0') * scale
	}
	return d, true
}

// allDigits reports whether s, not empty, holds ASCII digits only.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// resetWait returns the time from now until the reset v, read as the rate
// limiter reads it (parseReset: a Unix time in seconds or milliseconds, an
// RFC 3339 or HTTP date, or below 1e8, seconds from now), so that the
// retry loop waits for the reset the partition learns. Like a Retry-After,
// the wait is capped at maxRetryAfterSeconds (the retry loop gives up on a
// wait longer than WithMaxRetryAfter), as is a number too large to parse.
// It reports false for a malformed value or a reset already past.
func resetWait(v string, now time.Time) (time.Duration, bool) {
	t, _, ok := parseReset(v, &lazyNow{t: now})
	if !ok {
		if v = strings.TrimSpace(v); allDigits(v) {
			return maxRetryAfterSeconds * time.Second, true // an absurd reset
		}
		return 0, false
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfterSeconds*time.Second), true
}
