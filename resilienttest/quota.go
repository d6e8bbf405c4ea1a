package resilienttest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ResetFormat is how a Server's rate-limit headers say when the quota
// resets.
type ResetFormat int

// The reset formats. All but IETF and XRateLimitDash send
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, and differ
// in the value of X-RateLimit-Reset. Times are rounded up to the unit of
// the format, so that a client waiting until the reset never wakes early.
const (
	// DefaultResetFormat is the dialect's own: RFC3339 for Aidelly (as its
	// documentation says), UnixSeconds for Altyaa and Postato.
	DefaultResetFormat ResetFormat = iota
	// UnixSeconds sends the reset as Unix seconds: 1771336800.
	UnixSeconds
	// UnixMillis sends the reset as Unix milliseconds: 1771336800000.
	UnixMillis
	// DeltaSeconds sends the seconds until the reset: 42.
	DeltaSeconds
	// RFC3339 sends the reset as an ISO-8601 UTC time:
	// 2026-02-17T14:00:00Z.
	RFC3339
	// IETF sends the IETF draft's structured fields instead:
	// RateLimit: "default";r=59;t=42 and RateLimit-Policy:
	// "default";q=60;w=60 (r remaining, t seconds until the reset, q the
	// limit, w the window in seconds). Counted per class (PerClass, and
	// Aidelly's default), the policies are named "reads" and "writes".
	IETF
	// XRateLimitDash sends X-Rate-Limit-Limit, X-Rate-Limit-Remaining and
	// X-Rate-Limit-Reset, the reset in Unix seconds.
	XRateLimitDash
)

// String returns the format's name, e.g. "UnixSeconds".
func (f ResetFormat) String() string {
	switch f {
	case DefaultResetFormat:
		return "DefaultResetFormat"
	case UnixSeconds:
		return "UnixSeconds"
	case UnixMillis:
		return "UnixMillis"
	case DeltaSeconds:
		return "DeltaSeconds"
	case RFC3339:
		return "RFC3339"
	case IETF:
		return "IETF"
	case XRateLimitDash:
		return "XRateLimitDash"
	}
	return "ResetFormat(" + strconv.Itoa(int(f)) + ")"
}

// WindowKind is how a Server's quota counts requests in time.
type WindowKind int

// The window kinds.
const (
	// DefaultWindow is the dialect's own: RollingWindow for Aidelly,
	// whose quota is a rolling minute, FixedWindow for Altyaa and
	// Postato.
	DefaultWindow WindowKind = iota
	// FixedWindow counts requests in windows that follow one another from
	// the Server's start: each allows Limit requests, and the reset is the
	// end of the current window, when the whole quota comes back.
	FixedWindow
	// RollingWindow counts the requests of the last Window: a request is
	// allowed while fewer than Limit were counted in the Window before it,
	// and each counted request frees its slot Window after it was counted.
	// The reset is when the next slot frees, the oldest counted request's
	// time plus Window (now, when none is counted).
	RollingWindow
)

// String returns the kind's name, e.g. "RollingWindow".
func (k WindowKind) String() string {
	switch k {
	case DefaultWindow:
		return "DefaultWindow"
	case FixedWindow:
		return "FixedWindow"
	case RollingWindow:
		return "RollingWindow"
	}
	return "WindowKind(" + strconv.Itoa(int(k)) + ")"
}

// Quota is the rate limit a Server emulates, set with WithQuota.
//
// The quota allows Limit requests (per class with PerClass, and by
// default for Aidelly) in a window of
// Window/TimeScale, fixed or rolling (see WindowKind). A window shorter
// than a millisecond lasts a millisecond; one of 292 years or more never
// ends. Every response
// carries the rate-limit headers of the request's class: the limit, the
// requests remaining, and the reset (see WindowKind); a request past the
// quota is answered 429 with the dialect's rate-limited envelope and
// Retry-After, the seconds until the reset, rounded up, at least 1.
//
// The quota is counted per credential, as the vendors count it (Aidelly
// per API key, Postato per tenant): requests whose Authorization header
// (else X-Api-Key) differs are counted apart, each credential with its own
// windows and headers, so that one tenant's spent quota answers none of
// another's requests with a 429; requests without either header share
// one count. The Server keeps the count of every credential it has counted
// for its life.
//
// The quota counts the requests the API itself processes: those answered
// normally, replays and conflicts included, and those a DropAfter step
// drops. Answers injected in front of the API (scripted or random errors,
// DropBefore) neither count nor are refused, but they carry the headers;
// requests to unknown routes carry none.
type Quota struct {
	// Limit is the number of requests a window allows; it must be
	// positive.
	Limit int
	// WriteLimit is, counted per class, the writes' limit; zero means
	// Limit.
	WriteLimit int
	// Window is the window's length; zero means one minute. Scaled by
	// TimeScale, it lasts at least a millisecond.
	Window time.Duration
	// PerClass counts reads (GET, HEAD) and writes (other methods)
	// apart, each with its own limit, as Aidelly does: a Server of the
	// Aidelly dialect counts them apart by default (unless Shared), the
	// others only with PerClass.
	PerClass bool
	// Shared counts reads and writes together, in one quota of Limit,
	// where the dialect would count them apart (Aidelly). PerClass and
	// Shared together are invalid.
	Shared bool
	// ResetFormat is how the headers say when the window resets.
	ResetFormat ResetFormat
	// Kind is whether the window is fixed or rolling; the zero value,
	// DefaultWindow, is the dialect's.
	Kind WindowKind
	// TimeScale speeds the clock of the quota up: with 60, a one-minute
	// window lasts one second. The headers announce the scaled times (a
	// reset one second away, a Retry-After of 1, a window of 1 second in
	// RateLimit-Policy), so that a client pacing itself by them behaves as
	// it would in real time. Zero means 1.
	TimeScale float64
}

// validate panics on invalid values.
func (q *Quota) validate() {
	if q.Limit <= 0 {
		panic(fmt.Sprintf("resilienttest: WithQuota: Limit %d is not positive", q.Limit))
	}
	switch {
	case q.WriteLimit < 0:
		panic(fmt.Sprintf("resilienttest: WithQuota: WriteLimit %d is negative", q.WriteLimit))
	case q.Window < 0:
		panic(fmt.Sprintf("resilienttest: WithQuota: Window %v is negative", q.Window))
	case q.PerClass && q.Shared:
		panic("resilienttest: WithQuota: PerClass and Shared together")
	case q.TimeScale < 0:
		panic(fmt.Sprintf("resilienttest: WithQuota: TimeScale %v is negative", q.TimeScale))
	case math.IsNaN(q.TimeScale) || math.IsInf(q.TimeScale, 0):
		panic(fmt.Sprintf("resilienttest: WithQuota: TimeScale %v is not a number", q.TimeScale))
	}
	if q.ResetFormat < DefaultResetFormat || q.ResetFormat > XRateLimitDash {
		panic("resilienttest: WithQuota: unknown " + q.ResetFormat.String())
	}
	if q.Kind < DefaultWindow || q.Kind > RollingWindow {
		panic("resilienttest: WithQuota: unknown " + q.Kind.String())
	}
}

// Classes of the quota.
const (
	classRead = iota
	classWrite
)

// quotaKey names one count of the quota: a credential's (see credential)
// class of requests.
type quotaKey struct {
	credential string
	class      int
}

// credential returns the credential a request with header h is counted
// under: its Authorization header, else its X-Api-Key header; "" for none.
func credential(h http.Header) string {
	if v := h.Get("Authorization"); v != "" {
		return v
	}
	return h.Get("X-Api-Key")
}

// quotaState is the state of the quota. The Server's mutex guards it.
type quotaState struct {
	q       Quota
	format  ResetFormat
	rolling bool
	window  time.Duration // real length of a window
	start   time.Time
	counts  map[quotaKey]*quotaCount
}

// quotaCount is the count of one credential's class of requests.
type quotaCount struct {
	// A fixed window: the window the count belongs to, and the requests
	// counted in it.
	idx  int64
	used int

	// A rolling window: the times of the requests counted in the last
	// window, oldest first (at most the class's limit), and the latest
	// time read.
	times []time.Time
	last  time.Time
}

func newQuotaState(q Quota, d Dialect, start time.Time) *quotaState {
	if q.Window == 0 {
		q.Window = time.Minute
	}
	if q.TimeScale == 0 {
		q.TimeScale = 1
	}
	if q.WriteLimit == 0 {
		q.WriteLimit = q.Limit
	}
	if d == Aidelly && !q.Shared {
		q.PerClass = true // Aidelly counts reads and writes apart
	}
	s := &quotaState{q: q, format: q.ResetFormat, start: start}
	s.rolling = q.Kind == RollingWindow || q.Kind == DefaultWindow && d == Aidelly
	if w := float64(q.Window) / q.TimeScale; w >= math.MaxInt64 {
		s.window = math.MaxInt64 // a window of 292 years or more: one that never ends
	} else {
		s.window = max(time.Duration(w), time.Millisecond)
	}
	if s.format == DefaultResetFormat {
		s.format = UnixSeconds
		if d == Aidelly {
			s.format = RFC3339
		}
	}
	return s
}

// key returns the count a request with method and header h is counted in:
// its credential's, of its class.
func (s *quotaState) key(method string, h http.Header) quotaKey {
	return quotaKey{credential(h), s.class(method)}
}

// class returns the class of a request with method.
func (s *quotaState) class(method string) int {
	if !s.q.PerClass {
		return classRead
	}
	switch method {
	case http.MethodGet, http.MethodHead, "":
		return classRead
	}
	return classWrite
}

func (s *quotaState) limit(c int) int {
	if c == classWrite {
		return s.q.WriteLimit
	}
	return s.q.Limit
}

// count returns the count of k, made on its first request.
func (s *quotaState) count(k quotaKey) *quotaCount {
	n := s.counts[k]
	if n == nil {
		if s.counts == nil {
			s.counts = make(map[quotaKey]*quotaCount)
		}
		n = new(quotaCount)
		s.counts[k] = n
	}
	return n
}

// roll moves n to the window of now and returns the window's end.
func (s *quotaState) roll(n *quotaCount, now time.Time) time.Time {
	elapsed := now.Sub(s.start)
	if elapsed < 0 {
		elapsed = 0
	}
	idx := int64(elapsed / s.window)
	if idx < n.idx {
		// now was read before another request moved the window on:
		// never go back to a window that has ended.
		idx = n.idx
	}
	if idx != n.idx {
		n.idx, n.used = idx, 0
	}
	return s.start.Add(time.Duration(idx+1) * s.window)
}

// slide drops from the rolling window of n the requests that left it at
// now, and returns now, or the latest time read if now is earlier: a time
// read before another request was counted never goes back.
func (s *quotaState) slide(n *quotaCount, now time.Time) time.Time {
	if now.Before(n.last) {
		now = n.last
	}
	n.last = now
	t := n.times
	i := 0
	for i < len(t) && !t[i].Add(s.window).After(now) {
		i++
	}
	n.times = t[i:]
	return now
}

// nextSlot returns when the next slot of the rolling window of n frees:
// the oldest counted request's time plus the window; now when none is
// counted.
func (s *quotaState) nextSlot(n *quotaCount, now time.Time) time.Time {
	if len(n.times) == 0 {
		return now
	}
	return n.times[0].Add(s.window)
}

// take counts one request of k at now. It returns the requests left, the
// reset (the window's end, or when the next slot of a rolling window
// frees), and whether the request is allowed.
func (s *quotaState) take(k quotaKey, now time.Time) (remaining int, reset time.Time, ok bool) {
	n, limit := s.count(k), s.limit(k.class)
	if s.rolling {
		now = s.slide(n, now)
		if len(n.times) >= limit {
			return 0, s.nextSlot(n, now), false
		}
		n.times = append(n.times, now)
		return limit - len(n.times), s.nextSlot(n, now), true
	}
	reset = s.roll(n, now)
	if n.used >= limit {
		return 0, reset, false
	}
	n.used++
	return limit - n.used, reset, true
}

// peek returns what take would without counting a request.
func (s *quotaState) peek(k quotaKey, now time.Time) (remaining int, reset time.Time) {
	n, limit := s.counts[k], s.limit(k.class)
	if n == nil {
		n = new(quotaCount) // a credential not counted yet: none kept for it
	}
	if s.rolling {
		now = s.slide(n, now)
		return max(limit-len(n.times), 0), s.nextSlot(n, now)
	}
	reset = s.roll(n, now)
	return max(limit-n.used, 0), reset
}

// retryAfter is the Retry-After of a 429 past the quota: the seconds until
// reset, rounded up, at least 1.
func retryAfter(reset, now time.Time) string {
	return strconv.FormatInt(max(ceilSeconds(reset.Sub(now)), 1), 10)
}

// setHeaders sets the rate-limit headers of class c on h.
func (s *quotaState) setHeaders(h http.Header, c, remaining int, reset, now time.Time) {
	limit := strconv.Itoa(s.limit(c))
	rem := strconv.Itoa(remaining)
	switch s.format {
	case IETF:
		name := `"default"`
		if s.q.PerClass {
			name = `"reads"`
			if c == classWrite {
				name = `"writes"`
			}
		}
		h.Set("RateLimit", name+";r="+rem+";t="+strconv.FormatInt(ceilSeconds(reset.Sub(now)), 10))
		h.Set("RateLimit-Policy", name+";q="+limit+";w="+strconv.FormatInt(max(ceilSeconds(s.window), 1), 10))
		return
	case XRateLimitDash:
		h.Set("X-Rate-Limit-Limit", limit)
		h.Set("X-Rate-Limit-Remaining", rem)
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(ceilUnix(reset), 10))
		return
	}
	var v string
	switch s.format {
	case UnixMillis:
		ms := reset.UnixMilli()
		if reset.Nanosecond()%int(time.Millisecond) != 0 {
			ms++
		}
		v = strconv.FormatInt(ms, 10)
	case DeltaSeconds:
		v = strconv.FormatInt(ceilSeconds(reset.Sub(now)), 10)
	case RFC3339:
		v = time.Unix(ceilUnix(reset), 0).UTC().Format(time.RFC3339)
	default:
		v = strconv.FormatInt(ceilUnix(reset), 10)
	}
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", rem)
	h.Set("X-RateLimit-Reset", v)
}

// ceilSeconds returns d in seconds, rounded up; 0 for d ≤ 0. It does not
// add before it divides, so that a Duration within a second of the
// longest (a window that never ends, a RateLimited step of MaxInt64) does
// not overflow to a negative number.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// ceilUnix returns t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() != 0 {
		s++
	}
	return s
}
