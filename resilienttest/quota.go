package resilienttest

import (
	"fmt"
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
	// limit, w the window in seconds). With PerClass the policies are named
	// "reads" and "writes".
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

// Quota is the rate limit a Server emulates, set with WithQuota.
//
// The quota is a fixed window: windows of Window/TimeScale follow one
// another from the Server's start, and each allows Limit requests (per
// class with PerClass). Every response carries the rate-limit headers of
// the request's class; a request past the quota is answered 429 with the
// dialect's rate-limited envelope and Retry-After, the seconds until the
// window ends, rounded up. (Aidelly's real window is rolling; a fixed one
// gives exact, predictable headers.)
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
	// WriteLimit is, with PerClass, the writes' limit; zero means Limit.
	WriteLimit int
	// Window is the window's length; zero means one minute.
	Window time.Duration
	// PerClass counts reads (GET, HEAD) and writes (other methods)
	// apart, each with its own limit, as Aidelly does.
	PerClass bool
	// ResetFormat is how the headers say when the window resets.
	ResetFormat ResetFormat
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
	if q.WriteLimit < 0 || q.Window < 0 || q.TimeScale < 0 {
		panic("resilienttest: WithQuota: negative WriteLimit, Window or TimeScale")
	}
	if q.ResetFormat < DefaultResetFormat || q.ResetFormat > XRateLimitDash {
		panic("resilienttest: WithQuota: unknown " + q.ResetFormat.String())
	}
}

// Classes of the quota.
const (
	classRead = iota
	classWrite
)

// quotaState is the state of the quota. The Server's mutex guards it.
type quotaState struct {
	q      Quota
	format ResetFormat
	window time.Duration // real length of a window
	start  time.Time
	idx    [2]int64 // the window each class's count belongs to
	used   [2]int
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
	s := &quotaState{q: q, format: q.ResetFormat, start: start}
	s.window = max(time.Duration(float64(q.Window)/q.TimeScale), time.Millisecond)
	if s.format == DefaultResetFormat {
		s.format = UnixSeconds
		if d == Aidelly {
			s.format = RFC3339
		}
	}
	return s
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

// roll moves class c to the window of now and returns the window's end.
func (s *quotaState) roll(c int, now time.Time) time.Time {
	elapsed := now.Sub(s.start)
	if elapsed < 0 {
		elapsed = 0
	}
	idx := int64(elapsed / s.window)
	if idx < s.idx[c] {
		// now was read before another request moved the window on:
		// never go back to a window that has ended.
		idx = s.idx[c]
	}
	if idx != s.idx[c] {
		s.idx[c], s.used[c] = idx, 0
	}
	return s.start.Add(time.Duration(idx+1) * s.window)
}

// take counts one request of class c at now. It returns the requests left
// in the window, the window's end, and whether the request is allowed.
func (s *quotaState) take(c int, now time.Time) (remaining int, reset time.Time, ok bool) {
	reset = s.roll(c, now)
	if s.used[c] >= s.limit(c) {
		return 0, reset, false
	}
	s.used[c]++
	return s.limit(c) - s.used[c], reset, true
}

// peek returns what take would without counting a request.
func (s *quotaState) peek(c int, now time.Time) (remaining int, reset time.Time) {
	reset = s.roll(c, now)
	return max(s.limit(c)-s.used[c], 0), reset
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

// ceilSeconds returns d in seconds, rounded up; 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// ceilUnix returns t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() != 0 {
		s++
	}
	return s
}
