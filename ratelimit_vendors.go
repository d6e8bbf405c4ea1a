package resilient

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file reads the rate-limit headers of vendors outside the common
// families (see parseRateLimit), and lets callers plug in their own.

// Vendor rate-limit headers, in canonical form.
const (
	// OpenAI: requests and tokens apart; resets are durations ("6m0s").
	// Only the requests quota is read, and the tokens' remaining count
	// tells the family (see vendor).
	hdrOAILimitReq   = "X-Ratelimit-Limit-Requests"
	hdrOAIRemainReq  = "X-Ratelimit-Remaining-Requests"
	hdrOAIResetReq   = "X-Ratelimit-Reset-Requests"
	hdrOAIRemainTok  = "X-Ratelimit-Remaining-Tokens"
	hdrAnthLimitReq  = "Anthropic-Ratelimit-Requests-Limit"
	hdrAnthRemainReq = "Anthropic-Ratelimit-Requests-Remaining"
	hdrAnthResetReq  = "Anthropic-Ratelimit-Requests-Reset"
	hdrAnthRemainTok = "Anthropic-Ratelimit-Tokens-Remaining"
	// Shopify's REST Admin API: "used/limit" of a leaky bucket.
	hdrShopify = "X-Shopify-Shop-Api-Call-Limit"
)

// shopifyDrain is how long a full Shopify REST bucket takes to empty: its
// leak rate is in proportion to its size (40 calls leaking 2 a second, 80
// leaking 4, Shopify Plus's 400 leaking 20), so that the size the header
// gives tells the rate.
const shopifyDrain = 20 * time.Second

// A RateLimitParser reads a vendor's rate-limit headers h, received at now,
// into the quota they announce (Limit and Remaining -1, Reset zero, when
// not announced), and reports whether it found any. See
// WithRateLimitParser.
type RateLimitParser func(h http.Header, now time.Time) (RateLimitInfo, bool)

// WithRateLimitParser adds p to the readers of rate-limit headers: it is
// asked when none of the built-in families is present in a response (see
// WithRateLimit), and what it returns is learned as theirs is, under the
// same bounds (a reset past MaxBelievedReset is not believed). Several
// calls add parsers, asked in order until one finds something. A nil p is
// ignored.
func WithRateLimitParser(p RateLimitParser) Option {
	return func(c *config) {
		perTransport(c, "WithRateLimitParser")
		if p != nil {
			c.rateParsers = append(c.rateParsers, p)
		}
	}
}

// vendor reads the vendor families: OpenAI's and Anthropic's requests
// quotas, and Shopify's call limit. It reports whether one was present.
//
// OpenAI's and Anthropic's quotas are refilled continuously, and their
// reset is when a quota is full again: a spent requests quota lets one
// request through once a share of it is back (see refillUnit), not at its
// reset. Their tokens quotas are not paced: how many tokens the next
// request needs is unknown, and a spent one, whose reset may lie minutes
// ahead, would hold every request to the host for as long, where a plain
// client would be answered; the server's 429 says how long to wait
// (retry-after-ms, Retry-After).
func (r *rateHeaders) vendor(h http.Header, now *lazyNow) bool {
	switch {
	case len(h[hdrOAIRemainReq]) > 0 || len(h[hdrOAIRemainTok]) > 0:
		r.pair(h, hdrOAILimitReq, hdrOAIRemainReq, hdrOAIResetReq, now)
		r.refill = true
		return true
	case len(h[hdrAnthRemainReq]) > 0 || len(h[hdrAnthRemainTok]) > 0:
		r.pair(h, hdrAnthLimitReq, hdrAnthRemainReq, hdrAnthResetReq, now)
		r.refill = true
		return true
	case len(h[hdrShopify]) > 0:
		used, limit, ok := strings.Cut(headerValue(h, hdrShopify), "/")
		u, ok1 := parseCount(used)
		l, ok2 := parseCount(limit)
		if ok && ok1 && ok2 && l > 0 && u <= l {
			r.info.Limit, r.info.Remaining = l, l-u
			r.window = shopifyDrain
			if u == l {
				// Full: one call leaks out in shopifyDrain/l.
				r.info.Reset = now.get().Add(shopifyDrain / time.Duration(l))
			}
		}
		return true
	}
	return false
}

// pair reads a limit, a remaining count and a reset given as a duration
// ("6m0s", "12ms", "1.5") or a time. Of fields given on several lines,
// the values of one line are read together, as rateHeaders.family reads
// them (see tripleLines).
func (r *rateHeaders) pair(h http.Header, limitKey, remainingKey, resetKey string, now *lazyNow) {
	lv, rv, sv := tripleLines(h[limitKey], h[remainingKey], h[resetKey], countValue)
	if n, ok := firstCount(lv); ok {
		r.info.Limit = n
	}
	if n, ok := firstCount(rv); ok {
		r.info.Remaining = n
	}
	for _, v := range firstLines(sv) {
		if t, ok := vendorReset(h, oneValue(v), now); ok {
			r.info.Reset = t
			break
		}
	}
}

// vendorReset parses a reset given as a Go duration ("6m0s", "12ms"), as
// seconds, or in the forms parseReset knows (an RFC 3339 time for
// Anthropic).
func vendorReset(h http.Header, v string, now *lazyNow) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.get().Add(d), true
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < resetUnixSeconds {
		return now.get().Add(time.Duration(f * float64(time.Second))), true
	}
	t, abs, ok := parseReset(v, now)
	if ok && abs {
		t = t.Add(-serverSkew(h, now.get()))
	}
	return t, ok
}

// custom asks the caller's parsers, in order.
func (r *rateHeaders) custom(parsers []RateLimitParser, h http.Header, now *lazyNow) bool {
	for _, p := range parsers {
		if info, ok := p(h, now.get()); ok {
			r.info = info
			return true
		}
	}
	return false
}
