package resilient

// codeEntry is one row of the built-in code tables.
type codeEntry struct {
	code  string
	class Class
}

// aidellyCodes is Aidelly's error catalog (see AidellyCodes).
var aidellyCodes = [...]codeEntry{
	{"PUBLIC_API_AUTH_REQUIRED", Permanent},
	{"PUBLIC_API_KEY_INVALID", Permanent},
	{"PUBLIC_API_KEY_EXPIRED", Permanent},
	{"PUBLIC_API_SCOPE_FORBIDDEN", Permanent},
	{"PUBLIC_API_WORKSPACE_FORBIDDEN", Permanent},
	{"PUBLIC_API_BRAND_FORBIDDEN", Permanent},
	{"PUBLIC_API_BODY_INVALID", Permanent},
	{"PUBLIC_API_QUERY_INVALID", Permanent},
	{"PUBLIC_API_IDEMPOTENCY_CONFLICT", Permanent},
	{"PUBLIC_API_IDEMPOTENCY_REQUIRED", Permanent},
	{"PUBLIC_API_PUBLISH_FAILED", Permanent},
	{"PUBLIC_API_POST_NOT_FOUND", Permanent},
	{"PUBLIC_API_POST_CANCEL_INVALID_STATE", Permanent},
	{"PUBLIC_API_CONTEXT_ERROR", Transient},
	{"PUBLIC_API_AUTH_ERROR", Transient},
	{"PUBLIC_API_MEDIA_CREATE_FAILED", Transient},
	{"PUBLIC_API_UPLOAD_URL_FAILED", Transient},
	{"PUBLIC_API_POST_LIST_FAILED", Transient},
	{"PUBLIC_API_POST_CREATE_FAILED", Transient},
	{"PUBLIC_API_POST_FETCH_FAILED", Transient},
	{"PUBLIC_API_POST_CANCEL_FAILED", Transient},
	{"PUBLIC_API_CONNECTIONS_FETCH_FAILED", Transient},
	{"PUBLIC_API_WEBHOOK_CREATE_FAILED", Transient},
	{"PUBLIC_API_USAGE_FETCH_FAILED", Transient},
	{"PUBLIC_API_RATE_LIMITED", Throttled},
}

// altyaaCodes is Altyaa's error code list (see AltyaaCodes).
var altyaaCodes = [...]codeEntry{
	{"unauthorized", Permanent},
	{"forbidden", Permanent},
	{"invalid_request", Permanent},
	{"not_found", Permanent},
	{"conflict", Permanent},
	{"rate_limit_exceeded", Throttled},
	{"service_unavailable", Transient},
}

// postatoCodes is Postato's error list (see PostatoCodes).
var postatoCodes = [...]codeEntry{
	{"INVALID_REQUEST", Permanent},
	{"permission_denied", Permanent},
	{"plan_inactive", Permanent},
	{"policy_violation", Permanent},
	{"workspace_required", Permanent},
	{"not_found", Permanent},
	{"VALIDATION_FAILED", Permanent},
}

// googleReasons are the reasons of Google's older JSON errors that ask for a
// retry with backoff: rate limits, which Google's APIs (Drive, Gmail,
// Calendar, YouTube) answer with a 403 as often as with a 429. A daily
// quota (dailyLimitExceeded, quotaExceeded) is not among them: no retry
// within a call's budget would pass it.
var googleReasons = [...]codeEntry{
	{"rateLimitExceeded", Throttled},
	{"userRateLimitExceeded", Throttled},
}

// throttleCodes are other APIs' throttling codes, matched case-insensitively
// and with '-' and '_' treated alike, each under the spelling DefaultCodes
// lists (issue 3's): a class given to that spelling with WithCodes applies
// to every other.
var throttleCodes = [...]string{
	"rate_limited", "rate_limit_exceeded", "too_many_requests", "throttled", "quota-exceeded",
}

// inFlightCodes say that a request with the same idempotency key is still
// being processed (the IETF Idempotency-Key draft's 409): the same key,
// later, gets the first request's answer, so they are Transient.
var inFlightCodes = [...]codeEntry{
	{"idempotency_key_in_use", Transient}, // Stripe
}

func tableMap(rows []codeEntry) map[string]Class {
	m := make(map[string]Class, len(rows))
	for _, r := range rows {
		m[r.code] = r.class
	}
	return m
}

// AidellyCodes returns a new copy of the classes of Aidelly's error codes.
// PUBLIC_API_IDEMPOTENCY_REQUIRED is Permanent here; the Transport retries
// it once with a generated key (see WithoutIdempotencyKeys).
// PUBLIC_API_IDEMPOTENCY_CONFLICT is Permanent: a new key would be a new
// write.
func AidellyCodes() map[string]Class { return tableMap(aidellyCodes[:]) }

// AltyaaCodes returns a new copy of the classes of Altyaa's error codes.
func AltyaaCodes() map[string]Class { return tableMap(altyaaCodes[:]) }

// PostatoCodes returns a new copy of the classes of Postato's error codes.
// Postato's 429 is Throttled whatever its code, by status.
func PostatoCodes() map[string]Class { return tableMap(postatoCodes[:]) }

// DefaultCodes returns a new map of every code the Transport knows without
// configuration: the three vendors' tables, Stripe's idempotency_key_in_use
// (Transient: the same key is still being processed), the reasons of
// Google's older errors that are rate limits (rateLimitExceeded and
// userRateLimitExceeded, Throttled: Google answers them with a 403 too) and
// the common throttling codes (rate_limited, rate_limit_exceeded,
// too_many_requests, throttled, quota-exceeded), which are also matched
// case-insensitively. A Google error's reason is looked up when its code
// (its status) is not in the table.
func DefaultCodes() map[string]Class {
	m := AidellyCodes()
	for _, r := range inFlightCodes {
		m[r.code] = r.class
	}
	for _, r := range googleReasons {
		m[r.code] = r.class
	}
	for _, r := range altyaaCodes {
		m[r.code] = r.class
	}
	for _, r := range postatoCodes {
		m[r.code] = r.class
	}
	for _, c := range throttleCodes {
		m[c] = Throttled
	}
	return m
}

// codeTable is a Transport's immutable code lookup.
type codeTable struct {
	exact map[string]Class
}

func newCodeTable(overrides map[string]Class) codeTable {
	m := DefaultCodes()
	// An override of a common throttling code under another spelling
	// (quota_exceeded, which DefaultCodes listed before quota-exceeded;
	// any case) applies to every spelling too, unless the listed one is
	// overridden itself: its class is the one lookup gives them. Of two
	// such spellings, the first in byte order wins, whatever the order
	// of the map.
	folded := make(map[string]string) // listed spelling → override's key
	for c, cl := range overrides {
		m[c] = cl
		if t := throttleCode(c); t != "" && t != c {
			if _, own := overrides[t]; !own && (folded[t] == "" || c < folded[t]) {
				folded[t] = c
			}
		}
	}
	for t, c := range folded {
		m[t] = overrides[c]
	}
	return codeTable{exact: m}
}

// lookup returns the class of code: an exact match first, then a
// case-insensitive match among the common throttling codes, whose class is
// that of their canonical spelling in the table (Throttled unless
// overridden).
func (t codeTable) lookup(code string) (Class, bool) {
	if code == "" {
		return 0, false
	}
	if cl, ok := t.exact[code]; ok {
		return cl, true
	}
	if c := throttleCode(code); c != "" {
		return t.exact[c], true
	}
	return 0, false
}

// isThrottleCode reports whether code is one of the common throttling codes,
// ignoring case and treating '-' as '_'.
func isThrottleCode(code string) bool { return throttleCode(code) != "" }

// throttleCode returns the canonical spelling of code if it is one of the
// common throttling codes, ignoring case and treating '-' as '_', else "".
func throttleCode(code string) string {
	for _, c := range throttleCodes {
		if len(c) == len(code) && foldEqual(c, code) {
			return c
		}
	}
	return ""
}

// foldEqual compares lower-case ASCII want with s, ignoring case and
// treating '-' and '_' alike.
func foldEqual(want, s string) bool {
	for i := 0; i < len(s); i++ {
		c, w := s[i], want[i]
		if c == '-' {
			c = '_'
		}
		if w == '-' {
			w = '_'
		}
		if c != w && !('A' <= c && c <= 'Z' && c+'a'-'A' == w) {
			return false
		}
	}
	return true
}

// defaultCodes is the lookup ParseError uses.
func defaultCodeClass(code string) (Class, bool) {
	for _, tbl := range [][]codeEntry{aidellyCodes[:], altyaaCodes[:], postatoCodes[:], inFlightCodes[:], googleReasons[:]} {
		for _, r := range tbl {
			if r.code == code {
				return r.class, true
			}
		}
	}
	if code != "" && isThrottleCode(code) {
		return Throttled, true
	}
	return 0, false
}
