package resilient

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitTripleLinesReadTogether: of a Limit/Remaining/Reset triple
// given on several lines (a gateway's line beside the server's), the
// values of one line are read together: the line of the first well-formed
// Remaining (else Limit) among the first maxHintLines, and the other
// fields' line of the same index when they have as many lines; a field of
// another count is read as before (its first well-formed value) only when
// no other line announces a different Remaining, else not at all, since
// whose it is cannot be told. Each field was read apart: the gateway's
// Remaining 0 was paired with the server's hourly reset, and the gateway's
// Limit 10 with it too (a pace of 10 calls an hour).
func TestRateLimitTripleLinesReadTogether(t *testing.T) {
	none := RateLimitInfo{-1, -1, time.Time{}}
	in30 := rlNow.Add(30 * time.Second)
	tests := []struct {
		name string
		h    http.Header
		want RateLimitInfo
	}{
		{"X-RateLimit, gateway without a reset", http.Header{"X-Ratelimit-Limit": {"10", "5000"}, "X-Ratelimit-Remaining": {"0", "4999"}, "X-Ratelimit-Reset": {"", "3600"}},
			RateLimitInfo{10, 0, time.Time{}}},
		{"X-Rate-Limit, gateway without a reset", http.Header{"X-Rate-Limit-Limit": {"10", "5000"}, "X-Rate-Limit-Remaining": {"0", "4999"}, "X-Rate-Limit-Reset": {"", "3600"}},
			RateLimitInfo{10, 0, time.Time{}}},
		{"older drafts, gateway without a reset", http.Header{"Ratelimit-Limit": {"10", "5000"}, "Ratelimit-Remaining": {"0", "4999"}, "Ratelimit-Reset": {"", "3600"}},
			RateLimitInfo{10, 0, time.Time{}}},
		{"OpenAI, gateway without a reset", http.Header{"X-Ratelimit-Limit-Requests": {"10", "5000"}, "X-Ratelimit-Remaining-Requests": {"0", "4999"}, "X-Ratelimit-Reset-Requests": {"", "60m"}},
			RateLimitInfo{10, 0, time.Time{}}},
		{"Anthropic, gateway without a reset", http.Header{"Anthropic-Ratelimit-Requests-Limit": {"10", "5000"}, "Anthropic-Ratelimit-Requests-Remaining": {"0", "4999"}, "Anthropic-Ratelimit-Requests-Reset": {"", "3600"}},
			RateLimitInfo{10, 0, time.Time{}}},
		{"gateway without a limit", http.Header{"X-Ratelimit-Limit": {"", "5000"}, "X-Ratelimit-Remaining": {"0", "4999"}, "X-Ratelimit-Reset": {"30", "3600"}},
			RateLimitInfo{-1, 0, in30}},
		{"malformed Remaining: the next line's values", http.Header{"X-Ratelimit-Limit": {"10", "5000"}, "X-Ratelimit-Remaining": {"soon", "4999"}, "X-Ratelimit-Reset": {"30", "3600"}},
			RateLimitInfo{5000, 4999, rlNow.Add(time.Hour)}},
		{"no Remaining: Limit's line", http.Header{"X-Ratelimit-Limit": {"10", "5000"}, "X-Ratelimit-Reset": {"", "3600"}},
			RateLimitInfo{10, -1, time.Time{}}},
		{"a single Limit line, empty Remaining line first", http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"", "0"}, "X-Ratelimit-Reset": {"", "30"}},
			RateLimitInfo{5000, 0, in30}},
		{"a single Remaining line, empty Reset line first", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"", "30"}},
			RateLimitInfo{-1, 0, in30}},
		{"a single Reset line, two Remainings: whose is unknown", http.Header{"X-Ratelimit-Remaining": {"0", "4999"}, "X-Ratelimit-Reset": {"3600"}},
			RateLimitInfo{-1, 0, time.Time{}}},
		{"a single Reset line, copies of Remaining", http.Header{"X-Ratelimit-Remaining": {"0", "0"}, "X-Ratelimit-Reset": {"30"}},
			RateLimitInfo{-1, 0, in30}},
		{"IETF draft 7 dictionary, gateway's line without a reset", http.Header{"Ratelimit": {"limit=5000, remaining=4999, reset=3600", "remaining=0"}},
			RateLimitInfo{5000, 4999, rlNow.Add(time.Hour)}},
		{"IETF draft 7 dictionary, malformed remaining first", http.Header{"Ratelimit": {"limit=10, remaining=soon, reset=30", "limit=5000, remaining=0"}},
			RateLimitInfo{5000, 0, time.Time{}}},
		{"past maxHintLines", http.Header{"X-Ratelimit-Remaining": {"", "", "", "", "0"}, "X-Ratelimit-Reset": {"", "", "", "", "30"}}, none},
	}
	for _, tc := range tests {
		now := lazyNow{t: rlNow}
		if got := parseRateLimit(tc.h, &now).info; !got.Reset.Equal(tc.want.Reset) || got.Limit != tc.want.Limit || got.Remaining != tc.want.Remaining {
			t.Errorf("%s: parseRateLimit(%v) = %+v, want %+v", tc.name, tc.h, got, tc.want)
		}
	}
}

// TestRateLimitTripleLinesQuotaSpent: a 403 reads its quota (quotaSpent,
// rateLimited403) and its wait (serverWait) from the same line as the rate
// limiter does. A gateway's line that announces a limit of 0 (a quota it
// does not meter) without a Remaining hid the server's spent quota on the
// next line, so that GitHub's 403 over its primary quota was a refusal;
// and a gateway's spent quota without a reset waited for the server's
// hourly one.
func TestRateLimitTripleLinesQuotaSpent(t *testing.T) {
	h := http.Header{"X-Ratelimit-Limit": {"0", "5000"}, "X-Ratelimit-Remaining": {"", "0"}, "X-Ratelimit-Reset": {"", "30"}}
	if !rateLimited403(h) {
		t.Errorf("rateLimited403(%v) = false, want true", h)
	}
	clock := func() time.Time { return rlNow }
	if d, ok := serverWait(http.StatusForbidden, h, Throttled, clock); d != 30*time.Second || !ok {
		t.Errorf("serverWait(403, %v) = %v, %v, want 30s, true", h, d, ok)
	}
	checkSpent403WaitsReset(t, h)
	h = http.Header{"X-Ratelimit-Limit": {"10", "5000"}, "X-Ratelimit-Remaining": {"0", "4999"}, "X-Ratelimit-Reset": {"", "3600"}}
	if d, ok := serverWait(http.StatusForbidden, h, Throttled, clock); ok {
		t.Errorf("serverWait(403, %v) = %v, %v, want no wait (the gateway's line has no reset)", h, d, ok)
	}
}

// TestRateLimitTripleLinesDoNotHoldCalls: after a success on which a
// gateway announces its spent quota without a reset, beside the server's
// quota that resets in an hour, the next call is sent, with and without a
// static limit: the gateway's Remaining 0 paired with the server's reset
// held the host's calls for the hour, refused with ErrRateLimited at once
// (past WithMaxRetryAfter) where a plain client's calls are answered.
func TestRateLimitTripleLinesDoNotHoldCalls(t *testing.T) {
	headers := map[string]http.Header{
		"IETF draft 7 dictionary": {"Ratelimit": {"limit=5000, remaining=4999, reset=3600", "remaining=0"}},
	}
	for _, family := range []string{"X-Ratelimit", "X-Rate-Limit", "Ratelimit"} {
		headers[family] = http.Header{
			family + "-Limit":     {"10", "5000"},
			family + "-Remaining": {"0", "4999"},
			family + "-Reset":     {"", strconv.Itoa(3600)},
		}
	}
	for name, h := range headers {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 200, header: h, body: "first"}, {status: 200, body: "second"}}}
				tr := New(s, WithoutRetryBudget())
				if err := getClosed(t, tr, "http://api.test/"); err != nil {
					t.Fatal(err)
				}
				err := getClosed(t, tr, "http://api.test/")
				if err != nil || s.numCalls() != 2 {
					t.Errorf("second call: err %v after %d server hits, want an answer (2 hits); refused: %v", err, s.numCalls(), errors.Is(err, ErrRateLimited))
				}
			})
		})
	}
}

// TestRateLimitTripleLinesAllocs: reading a triple's values from one of
// several lines allocates nothing, in every family and in a 403's quota.
func TestRateLimitTripleLinesAllocs(t *testing.T) {
	hs := []http.Header{
		{"X-Ratelimit-Limit": {"10", "5000"}, "X-Ratelimit-Remaining": {"0", "4999"}, "X-Ratelimit-Reset": {"", "3600"}},
		{"X-Ratelimit-Limit-Requests": {"5000"}, "X-Ratelimit-Remaining-Requests": {"", "0"}, "X-Ratelimit-Reset-Requests": {"", "1s"}},
		{"Ratelimit": {"limit=5000, remaining=4999, reset=3600", "remaining=0"}},
	}
	for _, h := range hs {
		if n := testing.AllocsPerRun(100, func() {
			now := lazyNow{t: rlNow}
			parseRateLimit(h, &now)
			quotaSpent(h)
		}); n != 0 {
			t.Errorf("parseRateLimit(%v): %v allocations, want 0", h, n)
		}
	}
}
