package resilienttest

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ResetFormat is how a Quota announces when its window resets.
type ResetFormat int

// Reset formats of the rate-limit headers.
const (
	// UnixSeconds sends X-RateLimit-Limit, -Remaining and -Reset, the reset
	// as Unix seconds.
	UnixSeconds ResetFormat = iota
	// UnixMillis sends the reset as Unix milliseconds.
	UnixMillis
	// DeltaSeconds sends the reset as seconds from now, rounded up.
	DeltaSeconds
	// RFC3339 sends the reset as an RFC 3339 time, as Aidelly does.
	RFC3339
	// IETF sends the draft's structured fields: RateLimit: "default";r=…;t=…
	// and RateLimit-Policy: "default";q=…;w=….
	IETF
	// XRateLimitDash sends X-Rate-Limit-Limit, -Remaining and -Reset, the
	// reset as Unix seconds.
	XRateLimitDash
)

// Quota is a fixed-window rate limit the Server enforces and announces on
// every response. Past it, requests get 429 with Retry-After (seconds to the
// reset, rounded up) and are not processed.
type Quota struct {
	Limit  int           // requests per window (per class with PerClass)
	Window time.Duration // the window, in the server's time (default 1 minute)

	// PerClass counts reads (GET, HEAD, OPTIONS) and writes apart, as
	// Aidelly does.
	PerClass bool

	ResetFormat ResetFormat

	// TimeScale makes the server's time run faster than real time: with 60,
	// a one-minute window lasts one real second. The headers announce real
	// times and durations, so that a client pacing by them behaves. Zero
	// means 1.
	TimeScale float64
}

// quota tracks the windows of a Quota.
type quota struct {
	q      Quota
	window time.Duration // real duration of a window
	start  time.Time
	mu     sync.Mutex
	index  [2]int64 // current window index per class
	used   [2]int
}

func newQuota(q Quota) *quota {
	if q.Window <= 0 {
		q.Window = time.Minute
	}
	if q.TimeScale <= 0 {
		q.TimeScale = 1
	}
	w := time.Duration(float64(q.Window) / q.TimeScale)
	if w <= 0 {
		w = time.Nanosecond
	}
	return &quota{q: q, window: w, start: time.Now()}
}

// take counts a request of the given class. It returns whether it is within
// the quota, what remains after it, and when the window resets.
func (q *quota) take(write bool) (ok bool, remaining int, reset time.Time) {
	class := 0
	if write && q.q.PerClass {
		class = 1
	}
	now := time.Now()
	idx := int64(now.Sub(q.start) / q.window)
	q.mu.Lock()
	defer q.mu.Unlock()
	if idx != q.index[class] {
		q.index[class], q.used[class] = idx, 0
	}
	reset = q.start.Add(time.Duration(idx+1) * q.window)
	if q.used[class] >= q.q.Limit {
		return false, 0, reset
	}
	q.used[class]++
	return true, q.q.Limit - q.used[class], reset
}

// setHeaders announces the quota in the configured format.
func (q *quota) setHeaders(h http.Header, remaining int, reset time.Time) {
	now := time.Now()
	until := reset.Sub(now)
	if until < 0 {
		until = 0
	}
	secs := strconv.FormatInt(int64(math.Ceil(until.Seconds())), 10)
	limit := strconv.Itoa(q.q.Limit)
	rem := strconv.Itoa(remaining)
	switch q.q.ResetFormat {
	case IETF:
		h.Set("RateLimit", `"default";r=`+rem+`;t=`+secs)
		w := strconv.FormatInt(int64(math.Ceil(q.window.Seconds())), 10)
		h.Set("RateLimit-Policy", `"default";q=`+limit+`;w=`+w)
		return
	case XRateLimitDash:
		h.Set("X-Rate-Limit-Limit", limit)
		h.Set("X-Rate-Limit-Remaining", rem)
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(ceilUnix(reset), 10))
		return
	}
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", rem)
	var v string
	switch q.q.ResetFormat {
	case UnixMillis:
		v = strconv.FormatInt(reset.UnixMilli(), 10)
	case DeltaSeconds:
		v = secs
	case RFC3339:
		v = reset.UTC().Format(time.RFC3339Nano)
	default:
		v = strconv.FormatInt(ceilUnix(reset), 10)
	}
	h.Set("X-RateLimit-Reset", v)
}

// ceilUnix returns t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// retryAfter returns the Retry-After of a request past the quota.
func retryAfterSeconds(until time.Duration) string {
	s := int64(math.Ceil(until.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
