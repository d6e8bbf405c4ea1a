package resilient

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// This file holds the parsing of the rate-limit headers, which the rate
// limiter learns from (see ratelimit_learn.go for how a partition follows
// them, ratelimit_structured.go for the IETF draft's fields).

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

// servedByCache reports whether the response whose header is h is a
// cache's copy of one the server made earlier: its Age (RFC 9111, which
// HTTP caches and CDNs set) is above zero, or it carries X-From-Cache
// (which gregjones/httpcache, a Transport below this one, sets instead).
// Its rate-limit headers are not the quota's now.
func servedByCache(h http.Header) bool {
	if v := strings.TrimSpace(headerValue(h, "Age")); allDigits(v) && strings.TrimLeft(v, "0") != "" {
		return true
	}
	return len(h["X-From-Cache"]) > 0
}

// serverSkew returns how far ahead of now the server's clock is, as the Date
// header of its response h tells: zero without a well-formed Date, or when
// the Date is within dateTolerance of now. A time the server announces, less
// the skew, is the local time it means: a server three minutes ahead that
// asks for a pause until its Date plus ten seconds is asking for ten
// seconds. A Date as far as maxRetryAfterSeconds (136 years) or more from
// now is not believed either: a skew so large only saturates (a Duration
// spans 292 years), and its negation overflowed.
func serverSkew(h http.Header, now time.Time) time.Duration {
	v := headerValue(h, "Date")
	if v == "" {
		return 0
	}
	d, ok := parseHTTPDate(v)
	if !ok {
		return 0
	}
	skew := d.Sub(now)
	if skew > -dateTolerance && skew < dateTolerance || skew.Abs() >= maxRetryAfterSeconds*time.Second {
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
	if len(h) == 0 || scan && !mayHaveRateHeader(h) {
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
	if v := h[hdrRateLimit]; len(v) > 1 || len(v) == 1 && v[0] != "" {
		r.structured(v, h[hdrPolicy], now)
		return r
	}
	r.family(h, hdrOldLimit, hdrOldRemain, hdrOldReset, now)
	if v := h[hdrPolicy]; len(v) > 0 {
		// A policy alone, or with the older fields, gives the quota and
		// its window: with a limit, the window of the policy of that
		// quota (the one nearest to running out, whichever its place in
		// the list), else of the first.
		if p, ok := pickPolicy(v, "", r.info.Limit); ok {
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

// read returns the rate-limit values of resp, the response to attempt st
// (nil for none), and whether it read them: it returns none, and false,
// for a response it does not read; st draws the successes it reads while
// quiet. The caller's
// parsers (WithRateLimitParser) read what the built-in families do not
// find. A response whose rate-limit headers were spelled by hand gets
// their canonical spelling first (see canonicalRateHeaders).
func (w *headerWatch) read(resp *http.Response, now *lazyNow, parsers []RateLimitParser, st *attemptState) (rateHeaders, bool) {
	misses := w.misses.Load()
	if misses >= quietAfter && resp.StatusCode < 300 && st.random()%quietSample != 0 {
		return rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}, false
	}
	r := rateHeaders{info: RateLimitInfo{Limit: -1, Remaining: -1}}
	if misses == 0 || mayHaveRateHeader(resp.Header) {
		// (A header whose keys were scanned and hold none of the
		// families has neither a value to parse nor a key to respell.)
		r = parseRateLimitScan(resp.Header, now, false)
		if !r.found() && canonicalRateHeaders(resp) {
			r = parseRateLimitScan(resp.Header, now, false)
		}
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

// mayHaveRateHeader reports whether h may hold a rate-limit header: a
// small map with a key of the families, or a larger one, whose keys cost
// more to scan than the lookups of the families do.
func mayHaveRateHeader(h http.Header) bool {
	return len(h) > 8 || hasRateHeaderKey(h)
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
	c := canonicalRateHeader(resp.Header)
	if c == nil {
		return false
	}
	resp.Header = c
	return true
}

// canonicalRateHeader returns a copy of h whose keys are canonical when h
// holds a rate-limit header under a key that is not, else nil (see
// canonicalRateHeaders). h is not modified.
func canonicalRateHeader(h http.Header) http.Header { return canonicalHeader(h, isRateHeaderName) }

// canonicalHeader returns a copy of h whose keys are canonical when h
// holds a field that name reports on under a key that is not canonical,
// as a header built by hand below the Transport may, else nil. The values
// of a canonical key come first, then those of its other spellings in the
// order of their keys, so that the same header is read the same way
// whatever order the map's iteration draws. h is not modified.
func canonicalHeader(h http.Header, name func(k string) bool) http.Header {
	spelled := false
	for k := range h {
		if name(k) && textproto.CanonicalMIMEHeaderKey(k) != k {
			spelled = true
			break
		}
	}
	if !spelled {
		return nil
	}
	c := make(http.Header, len(h))
	var spellings []string
	for k, v := range h { // the canonical keys first, so that the values' order does not depend on the map's
		if textproto.CanonicalMIMEHeaderKey(k) == k {
			c[k] = append(c[k], v...)
		} else {
			spellings = append(spellings, k)
		}
	}
	// Then the other spellings, in the order of their keys: two of one
	// name ("x-ratelimit-remaining", "X-RATELIMIT-REMAINING") join in
	// the same order whatever order the map's iteration draws.
	slices.Sort(spellings)
	for _, k := range spellings {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		c[ck] = append(c[ck], h[k]...)
	}
	return c
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

// headerValue returns the first value of the canonical key k, or "", as
// oneValue reads it.
func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return oneValue(v[0])
	}
	return ""
}

// oneValue returns the value v of a field that holds one value, read as
// that value when v is a list of copies of it, joined by commas: a proxy
// that merges a field's repeated lines into one (RFC 9110, section 5.3)
// turns "X-RateLimit-Remaining: 5" sent twice into "5, 5", and
// "Retry-After: 30" into "30, 30", which say what one line does. A list
// whose members differ is returned as it is, malformed for the fields
// that hold one value. The copies may contain a comma themselves (an HTTP
// date's, after its day's name): the member is looked for up to the
// first comma, then up to the second. Whitespace around a copy is RFC
// 9110's (spaces and tabs), as copiesOf reads it: a copy that differs by
// other whitespace ("\u00a05, 5") differs. It allocates nothing.
func oneValue(v string) string {
	i := strings.IndexByte(v, ',')
	for try := 0; try < 2 && i >= 0; try++ {
		if m := strings.Trim(v[:i], " \t"); m != "" && copiesOf(v[i+1:], m) {
			return m
		}
		j := strings.IndexByte(v[i+1:], ',')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return v
}

// copiesOf reports whether rest is one or more copies of m, each with
// optional whitespace around it, joined by commas.
func copiesOf(rest, m string) bool {
	for {
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, m) {
			return false
		}
		rest = strings.TrimLeft(rest[len(m):], " \t")
		if rest == "" {
			return true
		}
		if rest[0] != ',' {
			return false
		}
		rest = rest[1:]
	}
}

// family reads a Limit/Remaining/Reset triple. It reports whether any of the
// three headers is present, well formed or not, so that families are never
// mixed. Of fields given on several lines, the values of one line are read
// together (see tripleLines).
func (r *rateHeaders) family(h http.Header, limitKey, remainingKey, resetKey string, now *lazyNow) bool {
	lv, rv, sv := h[limitKey], h[remainingKey], h[resetKey]
	if len(lv) == 0 && len(rv) == 0 && len(sv) == 0 {
		return false
	}
	lv, rv, sv = tripleLines(lv, rv, sv, limitValue)
	if n, w, ok := firstLimit(lv); ok {
		r.info.Limit, r.window = n, w
	}
	if n, ok := firstCount(rv); ok {
		r.info.Remaining = n
	}
	for _, v := range firstLines(sv) {
		if t, abs, ok := parseReset(oneValue(v), now); ok {
			if abs {
				// A time on the server's clock: read it against the
				// response's Date.
				t = t.Add(-serverSkew(h, now.get()))
			}
			r.info.Reset = t
			break
		}
	}
	return true
}

// tripleLines returns the lines to read of a Limit/Remaining/Reset triple
// whose fields' lines are lv, rv and sv, so that the values read together
// are one line's: a gateway's line beside the server's, or a proxy's
// empty line before it, never pairs a Remaining of one with a Reset or a
// Limit of the other (a gateway's spent quota with the server's hourly
// reset). The line read is the first of the first maxHintLines lines of
// Remaining whose value is well formed, else of Limit's (limitOf reads
// one): line i. Of each field, its line i is read when it has as many
// lines as the field that gave line i; else, when no other line of that
// field gives a different value (no second source, only copies or
// malformed lines, such as a single Remaining line or a proxy's empty one
// before it), the first well-formed value of its first maxHintLines lines,
// as a field on one line shared by all is read; else nothing, since which
// source's it is cannot be told. With neither a Remaining nor a Limit,
// Reset's first well-formed value is read. Each field's returned lines are
// read for their first well-formed value, as firstCount does. Fields on
// one line at most are returned as they are: it allocates nothing.
func tripleLines(lv, rv, sv []string, limitOf func(string) (int, bool)) (l, r, s []string) {
	if len(lv) <= 1 && len(rv) <= 1 && len(sv) <= 1 {
		return lv, rv, sv
	}
	by, i, several := anchorLine(rv, lv, countValue, limitOf)
	if i < 0 {
		return firstLines(lv), firstLines(rv), firstLines(sv)
	}
	return sameLine(lv, by, i, several), sameLine(rv, by, i, several), sameLine(sv, by, i, several)
}

// anchorLine returns the line of a triple whose values are read together:
// the first of the first maxHintLines lines rv of Remaining whose value
// remainingOf reads, else of the lines lv of Limit whose value limitOf
// reads. It returns the lines it was found among and its index, -1 for
// none, and whether a later one among them reads another value (see
// lineOf).
func anchorLine(rv, lv []string, remainingOf, limitOf func(string) (int, bool)) (by []string, i int, several bool) {
	if i, several = lineOf(rv, remainingOf); i >= 0 {
		return rv, i, several
	}
	i, several = lineOf(lv, limitOf)
	return lv, i, several
}

// lineOf returns the index of the first of the first maxHintLines lines v
// whose value parse reads, -1 for none, and whether a later one among them
// reads another value (several sources).
func lineOf(v []string, parse func(string) (int, bool)) (i int, several bool) {
	i, first := -1, 0
	for j, s := range firstLines(v) {
		n, ok := parse(s)
		switch {
		case !ok:
		case i < 0:
			i, first = j, n
		case n != first:
			return i, true
		}
	}
	return i, false
}

// sameLine returns the lines of the field whose lines are f to read beside
// line i of the field whose lines are by (see tripleLines).
func sameLine(f, by []string, i int, several bool) []string {
	switch {
	case len(f) == len(by):
		return f[i : i+1]
	case !several:
		return firstLines(f)
	}
	return nil
}

// countValue reads the line s of a Remaining field, as firstCount does.
func countValue(s string) (int, bool) { return parseCount(oneValue(s)) }

// limitValue reads the line s of a Limit field, as firstLimit does.
func limitValue(s string) (int, bool) {
	n, _, ok := parseLimit(oneValue(s))
	return n, ok
}

// firstLimit returns the limit of the lines v of a Limit field (see
// parseLimit): the first well-formed value among its first maxHintLines
// lines, as retryAfterHeader reads a repeated Retry-After, so that an empty
// or malformed line a proxy adds before the server's own does not hide it.
// The lines of a triple are those tripleLines picks.
func firstLimit(v []string) (limit int, window time.Duration, ok bool) {
	for _, s := range firstLines(v) {
		if limit, window, ok = parseLimit(oneValue(s)); ok {
			return limit, window, true
		}
	}
	return 0, 0, false
}

// firstCount returns the count of the lines v of a Remaining field (see
// parseCount), read as firstLimit reads a limit's.
func firstCount(v []string) (int, bool) {
	for _, s := range firstLines(v) {
		if n, ok := countValue(s); ok {
			return n, true
		}
	}
	return 0, false
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
//   - starts with a digit and contains 'T' or '-': an ISO 8601 time with a
//     zone, e.g. 2026-02-17T14:00:00Z (RFC 3339, also spelled
//     2026-02-17t14:00:00z or 2026-02-17 14:00:00Z), 2026-02-17T14:00Z or
//     2026-02-17T15:00:00+0100 (see parseISOTime);
//   - starts with a letter: an HTTP date, e.g. Tue, 17 Feb 2026 14:00:00 GMT
//     (in GMT: see parseHTTPDate);
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
		t, ok := parseISOTime(v)
		return t, true, ok
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		t, ok := parseHTTPDate(v)
		return t, true, ok
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

// isoLayouts are the ISO 8601 forms of a reset that RFC 3339 does not
// take: to the minute ("2026-02-17T14:00Z", Jira's documented form) and
// with an offset without its colon ("+0100", Java's and PHP's ISO 8601
// formats), each with seconds or not. A time without a zone is not read:
// the server's local time, not known, may be any.
var isoLayouts = [...]string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z0700"}

// rfc3339Layouts are the spellings of an RFC 3339 time: time.RFC3339's,
// and those that the NOTE of its section 5.6 allows and time.RFC3339 does
// not take, a lowercase z for UTC ("2026-02-17T14:00:00z") and a
// lowercase t or a space between the date and the time
// ("2026-02-17t14:00:00Z", "2026-02-17 14:00:00Z"). A time is parsed by
// the layout of its own spelling, indexed by its separator (T, t, space)
// times two, plus one for a z.
var rfc3339Layouts = [...]string{
	time.RFC3339, "2006-01-02T15:04:05z",
	"2006-01-02t15:04:05Z07:00", "2006-01-02t15:04:05z",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05z",
}

// parseISOTime parses an ISO 8601 time with a zone: an RFC 3339 time, in
// any of its spellings (see rfc3339Layouts), or one of isoLayouts. A
// fraction of a second is read in each.
func parseISOTime(v string) (time.Time, bool) {
	spelling := 0
	if len(v) > 10 {
		switch v[10] {
		case 't':
			spelling = 2
		case ' ':
			spelling = 4
		}
	}
	if v != "" && v[len(v)-1] == 'z' {
		spelling++
	}
	t, err := time.Parse(rfc3339Layouts[spelling], v)
	for i := 0; err != nil && i < len(isoLayouts); i++ {
		t, err = time.Parse(isoLayouts[i], v)
	}
	return t, err == nil
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
