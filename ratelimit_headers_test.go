package resilient

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// rlNow is the clock of the header tests: 2026-02-17T13:59:30Z.
var rlNow = time.Date(2026, 2, 17, 13, 59, 30, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := make(http.Header)
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseRateLimit(t *testing.T) {
	reset := rlNow.Add(30 * time.Second) // 2026-02-17T14:00:00Z
	tests := []struct {
		name   string
		h      http.Header
		want   RateLimitInfo
		window time.Duration
	}{
		{"none", hdr("Content-Type", "application/json"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"empty", nil, RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"X-RateLimit RFC 3339 (Aidelly)",
			hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "2026-02-17T14:00:00Z"),
			RateLimitInfo{60, 59, reset}, 0},
		{"X-RateLimit RFC 3339 with offset and fraction",
			hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "2026-02-17T15:00:00.5+01:00"),
			RateLimitInfo{60, 59, reset.Add(500 * time.Millisecond)}, 0},
		{"X-RateLimit ISO 8601 to the minute (Jira)",
			hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2026-02-17T14:00Z"),
			RateLimitInfo{60, 0, reset}, 0},
		{"X-RateLimit ISO 8601 with a basic offset",
			hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "2026-02-17T15:00:00.5+0100"),
			RateLimitInfo{60, 59, reset.Add(500 * time.Millisecond)}, 0},
		{"X-RateLimit ISO 8601 without a zone: malformed",
			hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "2026-02-17T14:00:00"),
			RateLimitInfo{60, 59, time.Time{}}, 0},
		{"X-RateLimit Unix seconds",
			hdr("X-RateLimit-Limit", "5000", "X-RateLimit-Remaining", "4999", "X-RateLimit-Reset", "1771336800"),
			RateLimitInfo{5000, 4999, reset}, 0},
		{"X-RateLimit Unix seconds with a fraction",
			hdr("X-RateLimit-Reset", "1771336800.25"),
			RateLimitInfo{-1, -1, reset.Add(250 * time.Millisecond)}, 0},
		{"X-RateLimit Unix milliseconds",
			hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1771336800123"),
			RateLimitInfo{30, 0, reset.Add(123 * time.Millisecond)}, 0},
		{"X-RateLimit seconds from now",
			hdr("X-RateLimit-Limit", "30", "X-RateLimit-Remaining", "7", "X-RateLimit-Reset", "30"),
			RateLimitInfo{30, 7, reset}, 0},
		{"X-RateLimit seconds from now, decimal",
			hdr("X-RateLimit-Reset", "1.5"),
			RateLimitInfo{-1, -1, rlNow.Add(1500 * time.Millisecond)}, 0},
		{"X-RateLimit HTTP date",
			hdr("X-RateLimit-Reset", "Tue, 17 Feb 2026 14:00:00 GMT"),
			RateLimitInfo{-1, -1, reset}, 0},
		{"X-Rate-Limit spelling",
			hdr("X-Rate-Limit-Limit", "100", "X-Rate-Limit-Remaining", "42", "X-Rate-Limit-Reset", "1771336800"),
			RateLimitInfo{100, 42, reset}, 0},
		{"X-RateLimit wins over X-Rate-Limit",
			hdr("X-RateLimit-Remaining", "1", "X-Rate-Limit-Remaining", "42"),
			RateLimitInfo{-1, 1, time.Time{}}, 0},
		{"IETF RateLimit and RateLimit-Policy",
			hdr("RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60`),
			RateLimitInfo{100, 50, reset}, time.Minute},
		{"IETF token name, spaces, extra parameters",
			hdr("RateLimit", `default ; r=50 ; t=30;pk=:YWJj:`, "RateLimit-Policy", `default;q=100;qu="requests";w=60`),
			RateLimitInfo{100, 50, reset}, time.Minute},
		{"IETF several items: the least remaining binds, with its policy",
			hdr("RateLimit", `"burst";r=50;t=1, "day";r=5;t=30`, "RateLimit-Policy", `"burst";q=100;w=60, "day";q=1000;w=86400`),
			RateLimitInfo{1000, 5, reset}, 24 * time.Hour},
		{"IETF policy of another name: the first",
			hdr("RateLimit", `"a";r=3;t=30`, "RateLimit-Policy", `"b";q=10;w=60`),
			RateLimitInfo{10, 3, reset}, time.Minute},
		{"IETF quoted name with a comma",
			hdr("RateLimit", `"a,b";r=3;t=30`, "RateLimit-Policy", `"x";q=9;w=1, "a,b";q=10;w=60`),
			RateLimitInfo{10, 3, reset}, time.Minute},
		{"IETF without a policy",
			hdr("RateLimit", `"default";r=0;t=30`),
			RateLimitInfo{-1, 0, reset}, 0},
		{"IETF draft 7 dictionary",
			hdr("RateLimit", `limit=100, remaining=50, reset=30`, "RateLimit-Policy", `100;w=60`),
			RateLimitInfo{100, 50, reset}, time.Minute},
		{"older draft RateLimit-*",
			hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "50", "RateLimit-Reset", "30"),
			RateLimitInfo{100, 50, reset}, 0},
		{"older draft limit with its window",
			hdr("RateLimit-Limit", "10, 10;w=1, 50;w=60", "RateLimit-Remaining", "9", "RateLimit-Reset", "30"),
			RateLimitInfo{10, 9, reset}, time.Second},
		{"policy alone",
			hdr("RateLimit-Policy", `"default";q=30;w=1`),
			RateLimitInfo{30, -1, time.Time{}}, time.Second},

		// Two quotas spent: a request waits until both are back.
		{"IETF items with as little left: the latest reset",
			hdr("RateLimit", `"a";r=0;t=50, "b";r=0;t=30, "c";r=0`, "RateLimit-Policy", `"a";q=10;w=60, "b";q=20;w=3600`),
			RateLimitInfo{10, 0, rlNow.Add(50 * time.Second)}, time.Minute},
		{"IETF items with as little left: the latest reset, listed last",
			hdr("RateLimit", `"a";r=0;t=30, "b";r=0;t=50`, "RateLimit-Policy", `"a";q=10;w=60, "b";q=20;w=3600`),
			RateLimitInfo{20, 0, rlNow.Add(50 * time.Second)}, time.Hour},
		{"IETF items with as little left: one without a reset loses, listed first",
			hdr("RateLimit", `"c";r=0, "b";r=0;t=5`, "RateLimit-Policy", `"b";q=20;w=3600`),
			RateLimitInfo{20, 0, rlNow.Add(5 * time.Second)}, time.Hour},
		{"older drafts' limit wins over the policy's quota",
			hdr("RateLimit-Limit", "50", "RateLimit-Remaining", "10", "RateLimit-Policy", "100;w=60"),
			RateLimitInfo{50, 10, time.Time{}}, time.Minute},
		{"IETF quoted name holding '='", hdr("RateLimit", `"q=1";r=5;t=30`), RateLimitInfo{-1, 5, reset}, 0},

		// Malformed values are ignored one by one.
		{"malformed limit", hdr("X-RateLimit-Limit", "lots", "X-RateLimit-Remaining", "5"), RateLimitInfo{-1, 5, time.Time{}}, 0},
		{"negative remaining", hdr("X-RateLimit-Remaining", "-1", "X-RateLimit-Limit", "5"), RateLimitInfo{5, -1, time.Time{}}, 0},
		{"negative remaining below the sentinel", hdr("X-RateLimit-Remaining", "-5", "X-RateLimit-Limit", "-5"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"signed remaining", hdr("X-RateLimit-Remaining", "+5"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"float remaining", hdr("X-RateLimit-Remaining", "4.5"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"huge remaining", hdr("X-RateLimit-Remaining", "99999999999999999999999"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset garbage", hdr("X-RateLimit-Reset", "soon"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset negative", hdr("X-RateLimit-Reset", "-30"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset exponent", hdr("X-RateLimit-Reset", "1e9"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset two dots", hdr("X-RateLimit-Reset", "1.2.3"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset huge", hdr("X-RateLimit-Reset", "99999999999999999999"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset past the millisecond times", hdr("X-RateLimit-Reset", "20000000000000000"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset bad date", hdr("X-RateLimit-Reset", "2026-13-45T99:00:00Z"), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"reset empty", hdr("X-RateLimit-Reset", " "), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"IETF garbage", hdr("RateLimit", `;;,,"unterminated;r=5`), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"IETF bad parameters", hdr("RateLimit", `"d";r=x;t=-3`, "RateLimit-Policy", `"d";q=;w=abc`), RateLimitInfo{-1, -1, time.Time{}}, 0},
		{"IETF huge t", hdr("RateLimit", `"d";r=1;t=99999999999`), RateLimitInfo{-1, 1, time.Time{}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := lazyNow{t: rlNow}
			got := parseRateLimit(tt.h, &now)
			if got.info.Limit != tt.want.Limit || got.info.Remaining != tt.want.Remaining || !got.info.Reset.Equal(tt.want.Reset) {
				t.Errorf("parseRateLimit(%v) = %+v, want %+v", tt.h, got.info, tt.want)
			}
			if got.window != tt.window {
				t.Errorf("parseRateLimit(%v) window = %v, want %v", tt.h, got.window, tt.window)
			}
			if wantFound := tt.want != (RateLimitInfo{-1, -1, time.Time{}}) || tt.window > 0; got.found() != wantFound {
				t.Errorf("parseRateLimit(%v).found() = %v, want %v", tt.h, got.found(), wantFound)
			}
		})
	}
}

// TestParseResetMagnitude pins the boundaries between the numeric forms.
func TestParseResetMagnitude(t *testing.T) {
	tests := []struct {
		v    string
		want time.Time
	}{
		{"0", rlNow},
		{"99999999", rlNow.Add(99999999 * time.Second)},               // just below 1e8: seconds from now
		{"100000000", time.Unix(1e8, 0)},                              // 1e8: Unix seconds
		{"99999999999", time.Unix(99999999999, 0)},                    // just below 1e11: Unix seconds
		{"100000000000", time.UnixMilli(100000000000)},                // 1e11: Unix milliseconds
		{"946684800", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},    // the synctest epoch in seconds
		{"946684800000", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}, // and in milliseconds
		{"2000-01-01T00:00:01Z", time.Date(2000, 1, 1, 0, 0, 1, 0, time.UTC)},
	}
	for _, tt := range tests {
		now := lazyNow{t: rlNow}
		got, _, ok := parseReset(tt.v, &now)
		if !ok || !got.Equal(tt.want) {
			t.Errorf("parseReset(%q) = %v, %v, want %v, true", tt.v, got, ok, tt.want)
		}
	}
}

// TestParseRateLimitNoHeadersNoAlloc checks the happy path's promise: no
// clock read, no allocation, with a small header map (scanned) and a large
// one (looked up).
func TestParseRateLimitNoHeadersNoAlloc(t *testing.T) {
	small := hdr("Content-Type", "application/json", "X-Request-Id", "abc", "Date", "Tue, 17 Feb 2026 14:00:00 GMT")
	large := small.Clone()
	for i := range 9 {
		large.Set("X-Custom-"+strconv.Itoa(i), "v")
	}
	for _, h := range []http.Header{small, large} {
		allocs := testing.AllocsPerRun(100, func() {
			var now lazyNow
			r := parseRateLimit(h, &now)
			if r.found() || !now.t.IsZero() {
				t.Fatal("found rate-limit values in a response without them")
			}
		})
		if allocs != 0 {
			t.Errorf("parseRateLimit of %d headers without rate-limit ones: %v allocs, want 0", len(h), allocs)
		}
	}
	// Both paths find a rate-limit header.
	for _, h := range []http.Header{small, large} {
		h = h.Clone()
		h.Set("X-Rate-Limit-Remaining", "3")
		var now lazyNow
		if r := parseRateLimit(h, &now); r.info.Remaining != 3 {
			t.Errorf("parseRateLimit of %d headers: Remaining %d, want 3", len(h), r.info.Remaining)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, v := range []string{"0", "7", "30", "1.5", "0.25", "1771336800", "1771336800.25", "1771336800123", "99999999999999999"} {
		want, _ := strconv.ParseFloat(v, 64)
		if got, ok := parseDecimal(v); !ok || math.Abs(got-want) > want*1e-15 {
			t.Errorf("parseDecimal(%q) = %v, %v; want %v, true", v, got, ok, want)
		}
	}
	for _, v := range []string{"", ".", ".5", "5.", "1.2.3", "-1", "+1", "1e9", " 1", "1 ", "0x10", "inf", "NaN", "1,5", "999999999999999999999"} {
		if got, ok := parseDecimal(v); ok {
			t.Errorf("parseDecimal(%q) = %v, true; want false", v, got)
		}
	}
}

func TestHeaderWatch(t *testing.T) {
	plain := hdr("Content-Type", "application/json")
	quota := hdr("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "7")
	read := func(w *headerWatch, h http.Header, status int, parsers ...RateLimitParser) bool {
		t.Helper()
		now := lazyNow{t: rlNow}
		r, _ := w.read(&http.Response{StatusCode: status, Header: h}, &now, parsers, nil)
		return r.found()
	}

	t.Run("reads every response until quiet", func(t *testing.T) {
		var w headerWatch
		for i := range quietAfter - 1 {
			if read(&w, plain, 200) {
				t.Fatalf("response %d: found a quota in %v", i, plain)
			}
		}
		// One response short of quiet: the next announcing one is read.
		if !read(&w, quota, 200) {
			t.Fatalf("after %d quiet responses: %v not read", quietAfter-1, quota)
		}
		if got := w.misses.Load(); got != 0 {
			t.Errorf("misses after a quota = %d, want 0", got)
		}
	})

	t.Run("quiet reads a share of successes and every failure", func(t *testing.T) {
		var w headerWatch
		for range quietAfter {
			read(&w, plain, 200)
		}
		if got := w.misses.Load(); got != quietAfter {
			t.Fatalf("misses = %d, want %d", got, quietAfter)
		}
		// Every response that is not a success is read.
		for _, status := range []int{301, 400, 429, 500, 503} {
			w.misses.Store(quietAfter)
			if !read(&w, quota, status) {
				t.Errorf("quiet: a %d announcing a quota was not read", status)
			}
		}
		// Successes: one in quietSample is read; the first one read ends
		// the quiet, and every later one is read.
		w.misses.Store(quietAfter)
		unread := 0
		for !read(&w, quota, 200) {
			unread++
			if unread > 2000 { // (7/8)^2000: never
				t.Fatal("quiet: 2000 successes announcing a quota, none read")
			}
		}
		for i := range 100 {
			if !read(&w, quota, 200) {
				t.Fatalf("after the quiet ended: success %d not read", i)
			}
		}
		// Over many quiet successes, about one in quietSample is read.
		var q headerWatch
		reads := 0
		count := func(h http.Header, _ time.Time) (RateLimitInfo, bool) {
			reads++
			return RateLimitInfo{}, false
		}
		for range quietAfter {
			read(&q, plain, 200, count)
		}
		reads = 0
		const n = 8000
		for range n {
			read(&q, plain, 200, count)
		}
		if lo, hi := n/quietSample/2, n/quietSample*2; reads < lo || reads > hi {
			t.Errorf("quiet: read %d of %d successes, want about %d", reads, n, n/quietSample)
		}
	})

	t.Run("a caller's parser counts as announcing", func(t *testing.T) {
		var w headerWatch
		custom := func(h http.Header, _ time.Time) (RateLimitInfo, bool) {
			if v := h.Get("X-Quota-Left"); v != "" {
				n, _ := strconv.Atoi(v)
				return RateLimitInfo{Limit: -1, Remaining: n}, true
			}
			return RateLimitInfo{}, false
		}
		for range 3 * quietAfter {
			if !read(&w, hdr("X-Quota-Left", "3"), 200, custom) {
				t.Fatal("a quota found by the caller's parser was not read")
			}
		}
		if got := w.misses.Load(); got != 0 {
			t.Errorf("misses = %d, want 0", got)
		}
	})

	t.Run("a header the lookups find without the scan", func(t *testing.T) {
		var w headerWatch // misses 0: the first response goes to the lookups
		for _, h := range []http.Header{quota, hdr("Ratelimit", `"d";r=5;t=9`), hdr("Ratelimit-Remaining", "4")} {
			if !read(&w, h, 200) {
				t.Errorf("%v not found without the scan", h)
			}
		}
	})
}
