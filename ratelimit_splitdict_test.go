package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitDictionarySplitOverLinesHoldsCalls: the draft 7 RateLimit
// dictionary is one structured field, which a server may send on several
// lines (RFC 9651, section 4.2: its lines joined by commas are the field),
// each member on one line only: no second source. A success whose
// dictionary says, over two lines, that the quota is spent for 30 seconds
// holds the next call until then, as the same members on one line do.
// Only the line of the remaining count was read: its reset, on the other
// line, was lost, and the next call went to the server at once, into its
// 429.
func TestRateLimitDictionarySplitOverLinesHoldsCalls(t *testing.T) {
	for _, lines := range [][]string{
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
