package resilient

import (
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file holds what the rate limiter learns from responses: the parsing
// of the rate-limit headers, and how a partition follows them.

// Rate-limit header names, in canonical form. See WithRateLimit for how each
// family is read.
const (
	hdrXLimit      = "X-Ratelimit-Limit"
	hdrXRemaining  = "X-Ratelimit-Remaining"
	hdrXReset      = "X-Ratelimit-Reset"
	hdrXDLimit     = "X-Rate-Limit-Limit"
	hdrXDRemaining = "X-Rate-Limit-Remaining"
	hdrXDReset     = "X-Rate-Limit-Reset"
	hdrRateLimit   = "Ratelimit"        // IETF draft, structured: "name";r=50;t=30
	hdrPolicy      = "Ratelimit-Policy" // IETF draft, structured: "name";q=100;w=60
	hdrOldLimit    = "Ratelimit-Limit"  // older IETF drafts
	hdrOldRemain   = "Ratelimit-Remaining"
	hdrOldReset    = "Ratelimit-Reset"
)

// Thresholds that tell the numeric forms of a reset apart by magnitude. A
// number of seconds from now is far below 1e8 (three years); a Unix time in
// seconds is above it since 1973 and below 1e11 until the year 5138; a Unix
// time in milliseconds is above 1e11 since 1973.
const (
	resetUnixMillis  = 1e11
	resetUnixSeconds = 1e8
	resetMax         = 1e16 // larger values are nonsense and ignored
)

// MaxBelievedReset is the furthest ahead a server's pause or quota reset may
// lie and still be believed by the rate limiter: an hour, the longest window
// real quotas commonly use, plus a minute of slack for rounding. A
// Retry-After of a day, a reset in the year 9999 or a policy window of a
// year is not believed: the partition learns nothing from it (the retry loop
// still sees the server's wait, which WithMaxRetryAfter bounds), so that one
// absurd header cannot stop a host's calls for longer than this. A believed
// pause always ends by then, and a quota that no response has announced
// since for this long paces the host no more.
const MaxBelievedReset = time.Hour + time.Minute

// dateTolerance is how far a response's Date may be from the local clock
// and still be taken to agree with it: Date has a resolution of one second,
// and a response takes time to arrive. Beyond it, times on the server's
// clock are read against its Date (see serverSkew).
const dateTolerance = 2 * time.Second

// serverSkew returns how far ahead of now the server's clock is, as the Date
// header of its response h tells: zero without a well-formed Date, or when
// the Date is within dateTolerance of now. A time the server announces, less
// the skew, is the local time it means: a server three minutes ahead that
// asks for a pause until its Date plus ten seconds is asking for ten
// seconds.
func serverSkew(h http.Header, now time.Time) time.Duration {
	v := headerValue(h, "Date")
	if v == "" {
		return 0
	}
	d, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	skew := d.Sub(now)
	if skew > -dateTolerance && skew < dateTolerance {
		return 0
	}
	return skew
}

// retryAfterOf parses the Retry-After value v of a response with header h
// received at now: an HTTP date is read against the response's own Date
// (see serverSkew).
func retryAfterOf(v string, h http.Header, now time.Time) (time.Duration, bool) {
	return parseRetryAfter(v, now.Add(serverSkew(h, now)))
}

// lazyNow reads the clock once, and only when asked: the happy path, a
// response without rate-limit headers, never reads it.
type lazyNow struct{ t time.Time }

func (c *lazyNow) get() time.Time {
	if c.t.IsZero() {
		c.t = time.Now()
	}
	return c.t
}

// rateHeaders is what one response announced about its partition's quota.
type rateHeaders struct {
	info   RateLimitInfo // Limit and Remaining are -1, Reset zero, when not announced
	window time.Duration // the policy's window (IETF w); 0 when not announced
	// refill says that Reset is when a quota refilled continuously is
	// full again, not the end of a window (OpenAI's and Anthropic's).
	refill bool
	// plain says that Limit is a plain X-RateLimit-Limit or
	// X-Rate-Limit-Limit, without a policy or a window: the quota of the
	// response's endpoint, on hosts that count each endpoint apart (see
	// learnPlain).
	plain bool
}

// found reports whether any value was announced (and well formed).
func (r *rateHeaders) found() bool {
	return r.info.Limit >= 0 || r.info.Remaining >= 0 || !r.info.Reset.IsZero() || r.window > 0
}

// parseRateLimit reads the rate-limit headers of a response. The first family
// present wins, in this order: X-RateLimit-*, X-Rate-Limit-*, the vendors'
// (OpenAI's and Anthropic's requests and tokens, Shopify's call limit; see
// ratelimit_vendors.go), the IETF
// draft's RateLimit (with RateLimit-Policy), the older drafts'
// RateLimit-Limit/-Remaining/-Reset. Malformed values are ignored one by one.
// Without any of these headers it reads no clock and allocates nothing: it
// scans the keys of a small header map, or makes eleven lookups in a larger
// one, whichever is cheaper.
func parseRateLimit(h http.Header, now *lazyNow) rateHeaders {
	return parseRateLimitScan(h, now, true)
}

// parseRateLimitScan is parseRateLimit; without scan, it skips the scan of
// a small map's keys and goes straight to the lookups, as it would for a
// large one: the cheaper way when the response is expected to announce a
// quota.
func parseRateLimitScan(h http.Header, now *lazyNow, scan bool) rateHeaders {
	r := rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}
	if len(h) == 0 || scan && len(h) <= 8 && !hasRateHeaderKey(h) {
		return r
	}
	if r.family(h, hdrXLimit, hdrXRemaining, hdrXReset, now) ||
		r.family(h, hdrXDLimit, hdrXDRemaining, hdrXDReset, now) {
		r.plain = r.info.Limit > 0 && r.window == 0
		return r
	}
	if r.vendor(h, now) {
		return r
	}
	if v := headerValue(h, hdrRateLimit); v != "" {
		r.structured(v, headerValue(h, hdrPolicy), now)
		return r
	}
	r.family(h, hdrOldLimit, hdrOldRemain, hdrOldReset, now)
	if v := headerValue(h, hdrPolicy); v != "" {
		// A policy alone, or with the older fields, gives the quota and
		// its window.
		if p, ok := pickPolicy(v, ""); ok {
			if r.info.Limit < 0 {
				r.info.Limit = p.quota
			}
			r.window = p.window
		}
	}
	return r
}

// quietAfter is how many responses in a row a Transport reads without
// finding a rate-limit value before it deems its hosts quiet; quietSample is
// the share of successes it then reads: one in quietSample.
const (
	quietAfter  = 32
	quietSample = 8
)

// headerWatch decides which responses of a Transport are read for
// rate-limit headers, so that a Transport whose hosts never announce a quota
// does not pay for looking on every success (a scan of the header's keys, or
// eleven lookups in a large one: 70 to 250 ns). Every response that is not a
// success is read, and every response while the Transport's hosts announce
// quotas: after quietAfter responses in a row without any, it reads one
// success in quietSample, chosen at random, until one announces a quota
// again. A host that starts announcing its quota on successes is thus heard
// within quietSample of them on average. While responses announce quotas,
// the next one is expected to as well: its header goes to the lookups
// directly, without the scan of its keys.
//
// The fields are written only when the state changes, or while counting
// toward quiet, so that calls on several cores do not contend for them.
// The zero value is ready to use.
type headerWatch struct {
	misses atomic.Int32 // responses read in a row without a rate-limit value, up to quietAfter
}

// read returns the rate-limit values of resp, and whether it read them: it
// returns none, and false, for a response it does not read. The caller's
// parsers (WithRateLimitParser) read what the built-in families do not
// find. A response whose rate-limit headers were spelled by hand gets
// their canonical spelling first (see canonicalRateHeaders).
func (w *headerWatch) read(resp *http.Response, now *lazyNow, parsers []RateLimitParser) (rateHeaders, bool) {
	misses := w.misses.Load()
	if misses >= quietAfter && resp.StatusCode < 300 && rand.Uint32()%quietSample != 0 {
		return rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}, false
	}
	r := parseRateLimitScan(resp.Header, now, misses > 0)
	if !r.found() && canonicalRateHeaders(resp) {
		r = parseRateLimitScan(resp.Header, now, false)
	}
	if len(parsers) > 0 && !r.found() {
		r.custom(parsers, resp.Header, now)
	}
	switch {
	case r.found():
		if misses != 0 {
			w.misses.Store(0)
		}
	case misses < quietAfter:
		w.misses.Add(1)
	}
	return r, true
}

// hasRateHeaderKey reports whether h has a key of the rate-limit families
// (see isRateHeaderName). For a map of up to 8 entries, scanning its keys
// costs less than hashing eleven of them.
func hasRateHeaderKey(h http.Header) bool {
	for k := range h {
		if isRateHeaderName(k) {
			return true
		}
	}
	return false
}

// canonicalRateHeaders gives resp a copy of its header whose keys are
// canonical, and reports whether it did, when the header holds a
// rate-limit header under a key that is not: a response built by hand
// below the Transport (a stub, a cache), as http.Header{"X-RateLimit-Remaining": …}
// builds it. net/http's own keys are canonical, and every reader of the
// rate-limit headers looks them up by their canonical key, as Header.Get
// does; the caller gets the copy, spelled as net/http would have spelled
// it. The header the base made is not modified: it may be shared.
func canonicalRateHeaders(resp *http.Response) bool {
	h := resp.Header
	spelled := false
	for k := range h {
		if isRateHeaderName(k) && textproto.CanonicalMIMEHeaderKey(k) != k {
			spelled = true
			break
		}
	}
	if !spelled {
		return false
	}
	c := make(http.Header, len(h))
	for k, v := range h { // the canonical keys first, so that the values' order does not depend on the map's
		if textproto.CanonicalMIMEHeaderKey(k) == k {
			c[k] = append(c[k], v...)
		}
	}
	for k, v := range h {
		if ck := textproto.CanonicalMIMEHeaderKey(k); ck != k {
			c[ck] = append(c[ck], v...)
		}
	}
	resp.Header = c
	return true
}

// isRateHeaderName reports whether k, in any case, names a header of the
// rate-limit families: Ratelimit*, X-Ratelimit*, X-Rate-Limit*,
// Anthropic-Ratelimit* or Shopify's call limit. The first byte decides
// most keys at once.
func isRateHeaderName(k string) bool {
	if len(k) < 9 {
		return false
	}
	switch k[0] | 0x20 {
	case 'r':
		return strings.EqualFold(k[:9], "Ratelimit")
	case 'a':
		return len(k) >= 19 && strings.EqualFold(k[:19], "Anthropic-Ratelimit")
	case 'x':
		return len(k) >= 11 && strings.EqualFold(k[:11], "X-Ratelimit") ||
			len(k) >= 12 && strings.EqualFold(k[:12], "X-Rate-Limit") ||
			strings.EqualFold(k, hdrShopify)
	}
	return false
}

// headerValue returns the first value of the canonical key k, or "".
func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// family reads a Limit/Remaining/Reset triple. It reports whether any of the
// three headers is present, well formed or not, so that families are never
// mixed.
func (r *rateHeaders) family(h http.Header, limitKey, remainingKey, resetKey string, now *lazyNow) bool {
	lv, rv, sv := h[limitKey], h[remainingKey], h[resetKey]
	if len(lv) == 0 && len(rv) == 0 && len(sv) == 0 {
		return false
	}
	if len(lv) > 0 {
		if n, w, ok := parseLimit(lv[0]); ok {
			r.info.Limit, r.window = n, w
		}
	}
	if len(rv) > 0 {
		if n, ok := parseCount(rv[0]); ok {
			r.info.Remaining = n
		}
	}
	if len(sv) > 0 {
		if t, abs, ok := parseReset(sv[0], now); ok {
			if abs {
				// A time on the server's clock: read it against the
				// response's Date.
				t = t.Add(-serverSkew(h, now.get()))
			}
			r.info.Reset = t
		}
	}
	return true
}

// parseCount parses a non-negative integer count.
//
// Two vendor spellings are read too: a count followed by a policy
// ("76;w=21600", Docker Hub) and a count with a zero fraction ("599.0",
// Reddit).
func parseCount(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if i := strings.IndexByte(v, '.'); i > 0 && strings.Trim(v[i+1:], "0") == "" {
		v = v[:i]
	}
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

// parseLimit parses a limit: a plain count ("100"), or the older IETF
// drafts' quota policy list ("100, 100;w=60, 1000;w=3600") whose first
// member is the limit in force and whose member with the same quota gives
// the window.
func parseLimit(v string) (limit int, window time.Duration, ok bool) {
	if !strings.ContainsAny(v, ";,") {
		n, ok := parseCount(v)
		return n, 0, ok
	}
	limit, ok = -1, false
	eachMember(v, func(name, params string) bool {
		n, isNum := parseCount(name)
		if !isNum {
			return true
		}
		if !ok {
			limit, ok = n, true
		}
		if n == limit {
			if w, has := paramSeconds(params, "w"); has && w > 0 {
				window = w
				return false
			}
		}
		return true
	})
	return limit, window, ok
}

// parseReset parses a reset value. Its form tells it apart:
//
//   - starts with a digit and contains 'T' or '-': an RFC 3339 time,
//     e.g. 2026-02-17T14:00:00Z;
//   - starts with a letter: an HTTP date, e.g. Tue, 17 Feb 2026 14:00:00 GMT;
//   - a number (decimals allowed) of at least 1e11: Unix milliseconds;
//   - a number of at least 1e8: Unix seconds;
//   - a smaller number: seconds from now.
//
// Anything else is malformed. abs reports a time on the server's clock
// (every form but seconds from now), which the caller reads against the
// response's Date.
func parseReset(v string, now *lazyNow) (t time.Time, abs, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false, false
	}
	c := v[0]
	switch {
	case c >= '0' && c <= '9' && strings.ContainsAny(v, "T-"):
		t, err := time.Parse(time.RFC3339, v)
		return t, true, err == nil
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		t, err := http.ParseTime(v)
		return t, true, err == nil
	}
	f, ok := parseDecimal(v)
	if !ok || f >= resetMax {
		return time.Time{}, false, false
	}
	switch {
	case f >= resetUnixMillis:
		ms := int64(f)
		return time.UnixMilli(ms), true, true
	case f >= resetUnixSeconds:
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), true, true
	}
	return now.get().Add(time.Duration(f * float64(time.Second))), false, true
}

// parseDecimal parses digits with an optional fraction ("30", "1.5"), and
// nothing else: no sign, exponent or spaces. Values of 1e18 and more are
// refused.
func parseDecimal(v string) (float64, bool) {
	var whole uint64
	i := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if whole >= 1e17 {
			return 0, false
		}
		whole = whole*10 + uint64(v[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	f := float64(whole)
	if i == len(v) {
		return f, true
	}
	if v[i] != '.' || i == len(v)-1 {
		return 0, false
	}
	scale := 0.1
	for i++; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		f += float64(c-'0') * scale
		scale /= 10
	}
	return f, true
}

// structured reads the IETF draft's RateLimit field, a list of
// `"policy";r=remaining;t=seconds` items, pairing it with RateLimit-Policy,
// a list of `"policy";q=quota;w=window` items. Among several items the one
// with the least remaining is the binding one; its policy is the one of the
// same name, else the first. The draft 7 dictionary form
// `limit=100, remaining=50, reset=30` is read too.
func (r *rateHeaders) structured(v, policy string, now *lazyNow) {
	bestName, best := "", -1
	var reset time.Duration
	hasReset := false
	dict := isDictionary(v)
	eachMember(v, func(name, params string) bool {
		if dict {
			// Dictionary form: each member is key=value.
			k, val, _ := strings.Cut(name, "=")
			k = strings.TrimSpace(k)
			switch k {
			case "limit", "l":
				if n, ok := parseCount(val); ok {
					r.info.Limit = n
				}
			case "remaining", "r":
				if n, ok := parseCount(val); ok {
					r.info.Remaining = n
				}
			case "reset", "t":
				if f, ok := parseDecimal(strings.TrimSpace(val)); ok && f < resetUnixSeconds {
					reset, hasReset = time.Duration(f*float64(time.Second)), true
				}
			}
			return true
		}
		n, ok := paramCount(params, "r")
		if !ok || (best >= 0 && n >= best) {
			return true
		}
		bestName, best = name, n
		reset, hasReset = paramSeconds(params, "t")
		return true
	})
	if !dict && best >= 0 {
		r.info.Remaining = best
	}
	if hasReset {
		r.info.Reset = now.get().Add(reset)
	}
	if policy == "" {
		return
	}
	if p, ok := pickPolicy(policy, bestName); ok {
		if r.info.Limit < 0 {
			r.info.Limit = p.quota
		}
		r.window = p.window
	}
}

// isDictionary reports whether a RateLimit value is the draft 7 dictionary
// form: its first member is an unquoted key=value (a list item that is a
// token cannot contain '=').
func isDictionary(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || v[0] == '"' {
		return false
	}
	end := strings.IndexAny(v, ",;")
	if end < 0 {
		end = len(v)
	}
	return strings.IndexByte(v[:end], '=') >= 0
}

type ratePolicy struct {
	quota  int
	window time.Duration
}

// pickPolicy returns the policy named name in a RateLimit-Policy list, else
// its first well-formed one.
func pickPolicy(v, name string) (ratePolicy, bool) {
	var first, named ratePolicy
	var hasFirst, hasNamed bool
	eachMember(v, func(n, params string) bool {
		q, ok := paramCount(params, "q")
		if !ok {
			// The older drafts' "100;w=60" form puts the quota first.
			if q, ok = parseCount(n); !ok {
				return true
			}
			n = ""
		}
		p := ratePolicy{quota: q}
		if w, ok := paramSeconds(params, "w"); ok && w > 0 {
			p.window = w
		}
		if !hasFirst {
			first, hasFirst = p, true
		}
		if name != "" && n == name {
			named, hasNamed = p, true
			return false
		}
		return true
	})
	if hasNamed {
		return named, true
	}
	return first, hasFirst
}

// eachMember calls fn with the name and the parameters (";"-separated, the
// leading ";" included) of each member of a structured-field list, until fn
// returns false. A quoted name is unquoted; commas inside quotes do not end
// a member. Parameters that are quoted strings are kept verbatim.
func eachMember(v string, fn func(name, params string) bool) {
	for len(v) > 0 {
		// Split off one member at the first comma outside quotes.
		end, quoted := len(v), false
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if quoted {
					i++
				}
			case '"':
				quoted = !quoted
			case ',':
				if !quoted {
					end = i
					i = len(v)
				}
			}
		}
		m := strings.TrimSpace(v[:end])
		if end < len(v) {
			v = v[end+1:]
		} else {
			v = ""
		}
		if m == "" {
			continue
		}
		name, params := m, ""
		if m[0] == '"' {
			// A quoted name ends at the first unescaped quote.
			i := 1
			for ; i < len(m) && m[i] != '"'; i++ {
				if m[i] == '\\' {
					i++
				}
			}
			if i >= len(m) {
				continue // unterminated: malformed
			}
			name, params = m[1:i], m[i+1:]
		} else if i := strings.IndexByte(m, ';'); i >= 0 {
			name, params = m[:i], m[i:]
		}
		if !fn(strings.TrimSpace(name), params) {
			return
		}
	}
}

// param returns the value of the parameter key in params (";k=v;k2=v2").
func param(params, key string) (string, bool) {
	for params != "" {
		var p string
		if i := strings.IndexByte(params[1:], ';'); i >= 0 {
			p, params = params[1:i+1], params[i+1:]
		} else {
			p, params = params[1:], ""
		}
		k, val, _ := strings.Cut(p, "=")
		if strings.TrimSpace(k) == key {
			return strings.TrimSpace(val), true
		}
	}
	return "", false
}

func paramCount(params, key string) (int, bool) {
	v, ok := param(params, key)
	if !ok {
		return 0, false
	}
	return parseCount(v)
}

// paramSeconds reads a parameter holding seconds (a structured-field
// integer or decimal).
func paramSeconds(params, key string) (time.Duration, bool) {
	v, ok := param(params, key)
	if !ok {
		return 0, false
	}
	f, ok := parseDecimal(v)
	if !ok || f >= resetUnixSeconds {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// rlResponse is what the rate limiter reads from one attempt's result.
type rlResponse struct {
	hdr        rateHeaders
	retryAfter time.Duration
	hasRA      bool // a Retry-After on a throttled or unavailable response
	throttled  bool // the class is Throttled (a 429 by default)
	status     int
	// method and path are the route of a response that announced a plain
	// limit (rateHeaders.plain); "" otherwise.
	method, path string
}

// believe drops from r what lies beyond MaxBelievedReset from now: a
// Retry-After, a reset (with the remaining quota of its window), a policy
// window. It reports whether anything is left
// to learn.
func (r *rlResponse) believe(now time.Time) bool {
	if r.hasRA && r.retryAfter > MaxBelievedReset {
		r.hasRA = false
	}
	if r.hdr.info.Reset.Sub(now) > MaxBelievedReset {
		// The remaining quota of that window goes with it.
		r.hdr.info.Reset, r.hdr.info.Remaining = time.Time{}, -1
	}
	if r.hdr.window > MaxBelievedReset {
		r.hdr.window = 0
	}
	return r.hasRA || r.hdr.found()
}

// update learns from one response, whose values r has believed, and ends
// the attempt's flight when *counted, clearing *counted before it calls
// the store.
func (rl *rateLimiter) update(p *partition, now time.Time, r *rlResponse, counted *bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *counted {
		p.inflight--
		*counted = false // ended, whatever the store does next
	}
	info := &r.hdr.info
	if r.hdr.found() {
		p.heard = now
	}
	// The remaining quota of the current window. A response with a later
	// reset starts a new window; one with an earlier reset (reordered)
	// only lowers the count, unless it belongs to an older window.
	if info.Remaining >= 0 && info.Reset.After(now) {
		switch {
		case !p.reset.After(now) || info.Reset.After(p.reset):
			p.remaining, p.reset = info.Remaining, info.Reset
			p.refillUnit, p.refillFrom = refillUnit(&r.hdr, now), now
		case p.window > 0 && p.reset.Sub(info.Reset) > p.window/2:
			// From an older window: ignore.
		case info.Remaining < p.remaining:
			p.remaining = info.Remaining
			p.refillUnit, p.refillFrom = refillUnit(&r.hdr, now), now
		}
	}
	if info.Limit > 0 {
		p.limit = info.Limit
		p.handedOver = false // the quota its store paces is p's again
	}
	switch {
	case len(r.path) > redact.MaxPath:
		p.plainMethod, p.plainPath = "", "" // not a route: a hostile URL
	case p.plainMethod != r.method || p.plainPath != r.path:
		// Copies: the path is part of the request's URL.
		p.plainMethod, p.plainPath = keepKey(r.method), keepKey(r.path)
	}
	if r.hdr.window > 0 {
		p.window, p.policyWindow = r.hdr.window, true
	} else if !p.policyWindow && info.Reset.After(now) {
		// The longest time to a reset seen is the window, or close to it.
		// An estimate that no response has confirmed (a time to a reset
		// of at least half of it) for two of its windows, or for
		// MaxBelievedReset if that is shorter, is dropped for the current
		// time to a reset while the server says that at least half of its
		// quota is left: one response's reset, however far ahead it was
		// believed, cannot slow the pace for longer than a believed pause
		// may last. A
		// quota in use keeps its estimate: a rolling window's resets are
		// those of its oldest request, close at hand under a steady load,
		// and never confirm it.
		switch est := info.Reset.Sub(now); {
		case est > p.window:
			p.window, p.windowSeen = est, now
		case est >= p.window/2:
			p.windowSeen = now
		case now.Sub(p.windowSeen) > min(2*p.window, MaxBelievedReset) && (info.Limit <= 0 || info.Remaining < 0 || info.Remaining*2 >= info.Limit):
			p.window, p.windowSeen = est, now
		}
	}

	// A pause: Retry-After first, else the reset.
	var until time.Time
	switch {
	case r.hasRA && (r.throttled || r.retryAfter <= rl.maxWait):
		// (A 503's Retry-After longer than any call waits pauses
		// nothing: the server is down, not out of quota, and the calls
		// that follow find out whether it is back before its word, as a
		// plain client's would, while the breaker sees to the outage.
		// Believed, one 503 would refuse the host's calls for up to
		// MaxBelievedReset.)
		until = now.Add(r.retryAfter)
		// Retry-After wins over the reset: the window is over when the
		// pause is.
		p.remaining, p.reset, p.refillUnit = 0, until, 0
	case info.Reset.After(now) && r.throttled:
		until = throttledUntil(*info, now)
	case info.Reset.After(now) && r.status == http.StatusServiceUnavailable && info.Remaining == 0:
		until = info.Reset
	}
	if until.After(p.pauseUntil) {
		p.pauseUntil = until
	}

	if !p.learnShared(info, until, r.hdr.found()) {
		rl.pace(p, now, info.Remaining)
	}
	p.reopen(now)
}

// refillUnit returns the time one request of a quota refilled continuously
// takes to come back, as h announces it at now: the time until it is full
// again, over the requests it lacks; 0 for a quota that resets at once, or
// when h does not tell.
func refillUnit(h *rateHeaders, now time.Time) time.Duration {
	i := &h.info
	if !h.refill || i.Limit <= 0 || i.Remaining < 0 || i.Remaining >= i.Limit || !i.Reset.After(now) {
		return 0
	}
	return max(i.Reset.Sub(now)/time.Duration(i.Limit-i.Remaining), 1)
}

// unrelatedThrottle is the longest pause of a throttled response without a
// Retry-After whose quota is not spent: GitHub asks for a minute after a
// secondary rate limit that says no more.
const unrelatedThrottle = time.Minute

// waitForReset makes the retry of attempt st, throttled by a server that
// gave no Retry-After, wait until the quota info it announced at now is
// available again (see throttledUntil), as a rate-limit partition pauses.
// It does nothing when the attempt was not throttled or when the reset is
// not after now.
func waitForReset(st *attemptState, throttled bool, info RateLimitInfo, now time.Time) {
	if throttled && !st.hasRetryAfter && info.Reset.After(now) {
		st.retryAfter, st.hasRetryAfter = throttledUntil(info, now).Sub(now), true
	}
}

// waitForAnnouncedReset makes the retry of attempt st, whose response resp
// was throttled without a Retry-After, wait for the reset resp announced,
// read as the limiter reads it (its families, then parsers), as
// waitForReset does. It serves the attempts that go without the limiter
// (WithoutRateLimit, a WithRateLimitKey that exempts them), whose learn
// does not run. A parser that panics closes resp's body first.
func waitForAnnouncedReset(st *attemptState, resp *http.Response, parsers []RateLimitParser, now time.Time) {
	if st.class != Throttled || st.hasRetryAfter {
		return
	}
	t := lazyNow{t: now}
	r := parseRateLimit(resp.Header, &t)
	if !r.found() && canonicalRateHeaders(resp) {
		r = parseRateLimit(resp.Header, &t)
	}
	if !r.found() && len(parsers) > 0 {
		done := false
		defer closeOnPanic(resp, &done)
		r.custom(parsers, resp.Header, &t)
		done = true
	}
	waitForReset(st, true, r.info, t.t)
}

// throttledUntil returns when the pause of a throttled response without a
// Retry-After ends, at now, from the quota info it announced with a reset:
// at the reset when that quota is spent (Remaining 0) or its remaining is
// not announced; else unrelatedThrottle from now at most, for the quota did
// not throttle the request (another limit did, such as GitHub's secondary
// limits), and its reset, up to an hour away, says nothing of when that
// limit ends.
func throttledUntil(info RateLimitInfo, now time.Time) time.Time {
	if info.Remaining > 0 && info.Reset.Sub(now) > unrelatedThrottle {
		return now.Add(unrelatedThrottle)
	}
	return info.Reset
}

// pace sets p's limiter from what the server announced: 95% of
// limit/window (of remaining/window when the remaining count is the
// larger), with bursts of the remaining quota; a static limit, when set,
// caps both. p.mu is held.
func (rl *rateLimiter) pace(p *partition, now time.Time, remaining int) {
	if p.limit <= 0 || p.window <= 0 {
		return
	}
	// A remaining count above the limit says that the quota counted is at
	// least that: a pace by the limit would refuse the calls the server
	// says remain.
	r := rate.Limit(paceShare * float64(max(p.limit, remaining)) / p.window.Seconds())
	b := remaining
	switch {
	case b < 0 && p.learned:
		b = p.paceBurst // not announced: keep it
	case b < 0:
		b = p.limit
	}
	if rl.static > 0 {
		r, b = min(r, rl.static), min(b, rl.burst)
	}
	b = max(b, 1)
	switch {
	case p.lim == nil:
		// The first quota learned, without a static limit: a full bucket,
		// so that the remaining quota can be used at once.
		p.lim = rate.NewLimiter(r, b)
	case !p.learned:
		// A static limiter keeps its tokens: never more than it allows.
		p.lim.SetLimitAt(now, r)
		p.lim.SetBurstAt(now, b)
	default:
		if r != p.paceRate {
			p.lim.SetLimitAt(now, r)
		}
		if b != p.paceBurst {
			p.lim.SetBurstAt(now, b)
		}
	}
	p.learned, p.paceRate, p.paceBurst = true, r, b
}

// unpace forgets the quota p's pace follows, which no response has
// announced for MaxBelievedReset: a server that stopped announcing it (one
// response's policy, a quota announced once) cannot hold a host's calls for
// longer than a believed pause may last. A static limit paces p again; the
// remaining quota, its reset and the pause, bounded by their own times,
// stay. The next response that announces a quota paces p anew. p.mu is
// held.
func (rl *rateLimiter) unpace(p *partition, now time.Time) {
	rl.dropPace(p, now)
	p.limit, p.window, p.policyWindow, p.windowSeen = 0, 0, false, time.Time{}
}

// dropPace forgets the pace p learned from the server, if any: the static
// limit paces p again, or nothing does. p.mu is held.
func (rl *rateLimiter) dropPace(p *partition, now time.Time) {
	if p.learned {
		if rl.static > 0 {
			p.lim.SetLimitAt(now, rl.static)
			p.lim.SetBurstAt(now, rl.burst)
		} else {
			p.lim = nil
		}
	}
	p.learned, p.paceRate, p.paceBurst, p.owed = false, rate.Limit(0), 0, 0
}
