package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestParseRateLimitStructuredOnSeveralLines: the IETF draft's RateLimit
// and RateLimit-Policy are lists (RFC 9651), which a response may send on
// several lines, as a gateway that adds its own quota's item beside the
// server's does; RFC 9651 (section 4.2) reads such a field as its lines
// joined by commas. Only the first line was read: the binding item on the
// second, a spent quota, was never seen, nor its policy.
func TestParseRateLimitStructuredOnSeveralLines(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		want   RateLimitInfo
		window time.Duration
	}{
		{"spent item on the second line",
			hdr("RateLimit", `"gw";r=100;t=60`, "RateLimit", `"api";r=0;t=30`),
			RateLimitInfo{-1, 0, rlNow.Add(30 * time.Second)}, 0},
		{"its policy on the second line",
			hdr("RateLimit", `"api";r=0;t=30`, "RateLimit-Policy", `"gw";q=1000;w=60`, "RateLimit-Policy", `"api";q=10;w=30`),
			RateLimitInfo{10, 0, rlNow.Add(30 * time.Second)}, 30 * time.Second},
		{"policy alone on two lines, first malformed",
			hdr("RateLimit-Policy", `;;`, "RateLimit-Policy", `"d";q=10;w=30`),
			RateLimitInfo{10, -1, time.Time{}}, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := lazyNow{t: rlNow}
			r := parseRateLimit(tc.h, &now)
			if r.info != tc.want || r.window != tc.window {
				t.Errorf("parseRateLimit(%v) = %+v, window %v; want %+v, window %v", tc.h, r.info, r.window, tc.want, tc.window)
			}
		})
	}
}

// TestRateLimitStructuredSecondLineHoldsCalls: a success whose RateLimit
// field's second line says that the server's own quota is spent for 30
// seconds holds the next call until then, as the same items on one line
// do: it went to the server at once, into its 429. So does a draft 7
// RateLimit dictionary sent on several lines, each member on one line only
// (RFC 9651, section 4.2: its lines joined by commas are the field, no
// second source): only the line of the remaining count was read (5a2f447),
// and its reset, on another line, was lost.
func TestRateLimitStructuredSecondLineHoldsCalls(t *testing.T) {
	for _, lines := range [][]string{
		{`"gw";r=100;t=60, "api";r=0;t=30`},
		{`"gw";r=100;t=60`, `"api";r=0;t=30`},
		{"limit=100, remaining=0, reset=30"},
		{"limit=100, remaining=0", "reset=30"},
		{"limit=100", "remaining=0", "reset=30"},
		{"reset=30", "limit=100, remaining=0"},
	} {
		synctest.Test(t, func(t *testing.T) {
			srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					w.Header()["Ratelimit"] = lines
				}
			}}
			client := &http.Client{Transport: New(handlerRT{srv})}
			start := time.Now()
			for i := range 2 {
				if code, err := do(t, client, "GET", "http://api.test/x"); code != http.StatusOK {
					t.Fatalf("call %d: %d, %v", i+1, code, err)
				}
			}
			a := srv.seen("")
			if len(a) != 2 {
				t.Fatalf("%d arrivals, want 2", len(a))
			}
			if d := a[1].at.Sub(start); d < 30*time.Second {
				t.Errorf("RateLimit %q: the second call reached the server %v after the first, want at least 30s (its quota spent until then)", lines, d)
			}
		})
	}
}

// TestRateLimitPolicyOnSeveralLinesPaces: a server whose quota is 100
// requests a minute, announced by its RateLimit item "api" and the policy
// of that name on RateLimit-Policy's second line, behind a gateway whose
// own policy of one request an hour comes first, is paced by its own
// policy. Only the first line was read: the gateway's policy, the only one
// found, was taken for "api"'s, and the Transport paced the host at one
// request an hour, refusing every call after the first with
// ErrRateLimited, where a plain client's went through.
func TestRateLimitPolicyOnSeveralLinesPaces(t *testing.T) {
	for _, policy := range [][]string{
		{`"gw";q=1;w=3600, "api";q=100;w=60`},
		{`"gw";q=1;w=3600`, `"api";q=100;w=60`},
	} {
		synctest.Test(t, func(t *testing.T) {
			srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("RateLimit", `"api";r=1;t=1`)
				w.Header()["Ratelimit-Policy"] = policy
			}}
			client := &http.Client{Transport: New(handlerRT{srv})}
			start := time.Now()
			for i := range 3 {
				if code, err := do(t, client, "GET", "http://api.test/x"); code != http.StatusOK {
					t.Fatalf("RateLimit-Policy %q: call %d: %d, %v; want 200 (the quota is 100 a minute)", policy, i+1, code, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("RateLimit-Policy %q: 3 calls took %v, want a few seconds at 100 a minute", policy, d)
			}
		})
	}
}

// TestParseRateLimitDictionarySplitOverLines: a dictionary whose members
// are on several lines, none repeated, is read as its lines joined (RFC
// 9651, section 4.2), as the list form is; lines that repeat a member are
// several sources' triples, of which one line is read (see tripleLines).
func TestParseRateLimitDictionarySplitOverLines(t *testing.T) {
	in30 := rlNow.Add(30 * time.Second)
	tests := []struct {
		h    http.Header
		want RateLimitInfo
	}{
		{http.Header{"Ratelimit": {"limit=100, remaining=0", "reset=30"}}, RateLimitInfo{100, 0, in30}},
		{http.Header{"Ratelimit": {"limit=100", "remaining=0", "reset=30"}}, RateLimitInfo{100, 0, in30}},
		{http.Header{"Ratelimit": {"reset=30", "limit=100, remaining=0"}}, RateLimitInfo{100, 0, in30}},
		{http.Header{"Ratelimit": {"l=100, r=0", "t=30"}}, RateLimitInfo{100, 0, in30}},
		{http.Header{"Ratelimit": {"", "limit=100, remaining=0", "reset=30"}}, RateLimitInfo{100, 0, in30}},
		// Several sources: a member repeated.
		{http.Header{"Ratelimit": {"limit=5000, remaining=4999, reset=3600", "remaining=0"}}, RateLimitInfo{5000, 4999, rlNow.Add(time.Hour)}},
		{http.Header{"Ratelimit": {"limit=10, remaining=soon, reset=30", "limit=5000, remaining=0"}}, RateLimitInfo{5000, 0, time.Time{}}},
		{http.Header{"Ratelimit": {"remaining=0", "r=4999, t=3600"}}, RateLimitInfo{-1, 0, time.Time{}}},
	}
	for _, tc := range tests {
		now := lazyNow{t: rlNow}
		if got := parseRateLimit(tc.h, &now).info; got != tc.want {
			t.Errorf("parseRateLimit(%v) = %+v, want %+v", tc.h, got, tc.want)
		}
	}
}

// TestRateLimitDictionarySplitOverLinesAllocs: telling a dictionary sent
// on several lines from several sources' lines allocates nothing.
func TestRateLimitDictionarySplitOverLinesAllocs(t *testing.T) {
	for _, h := range []http.Header{
		{"Ratelimit": {"limit=100, remaining=0", "reset=30"}},
		{"Ratelimit": {"limit=5000, remaining=4999, reset=3600", "remaining=0"}},
	} {
		if n := testing.AllocsPerRun(100, func() {
			now := lazyNow{t: rlNow}
			parseRateLimit(h, &now)
		}); n != 0 {
			t.Errorf("parseRateLimit(%v): %v allocations, want 0", h, n)
		}
	}
}
