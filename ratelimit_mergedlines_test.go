package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitMergedLinesRead: a field that holds one value, whose
// repeated lines a proxy merged into one ("5, 5"), is read as that value,
// in every family and in Retry-After; a merged list whose members differ
// stays malformed, and so ignored. The merged values were malformed.
func TestRateLimitMergedLinesRead(t *testing.T) {
	none := RateLimitInfo{-1, -1, time.Time{}}
	date := "Tue, 17 Feb 2026 14:00:00 GMT"
	tests := []struct {
		name string
		h    http.Header
		want RateLimitInfo
	}{
		{"X-RateLimit", http.Header{"X-Ratelimit-Limit": {"10, 10"}, "X-Ratelimit-Remaining": {"5, 5"}, "X-Ratelimit-Reset": {"30,30"}},
			RateLimitInfo{10, 5, rlNow.Add(30 * time.Second)}},
		{"X-Rate-Limit, Unix reset", http.Header{"X-Rate-Limit-Remaining": {"0 , 0 , 0"}, "X-Rate-Limit-Reset": {"1771336830, 1771336830"}},
			RateLimitInfo{-1, 0, time.Unix(1771336830, 0)}},
		{"HTTP date reset", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {date + ", " + date}},
			RateLimitInfo{-1, 0, rlNow.Add(30 * time.Second)}},
		{"RFC 3339 reset", http.Header{"X-Ratelimit-Remaining": {"1"}, "X-Ratelimit-Reset": {"2026-02-17T14:00:00Z, 2026-02-17T14:00:00Z"}},
			RateLimitInfo{-1, 1, rlNow.Add(30 * time.Second)}},
		{"older drafts", http.Header{"Ratelimit-Limit": {"10, 10"}, "Ratelimit-Remaining": {"3, 3"}, "Ratelimit-Reset": {"30, 30"}},
			RateLimitInfo{10, 3, rlNow.Add(30 * time.Second)}},
		{"OpenAI", http.Header{"X-Ratelimit-Limit-Requests": {"60, 60"}, "X-Ratelimit-Remaining-Requests": {"0, 0"}, "X-Ratelimit-Reset-Requests": {"1s, 1s"}},
			RateLimitInfo{60, 0, rlNow.Add(time.Second)}},
		{"Shopify", http.Header{"X-Shopify-Shop-Api-Call-Limit": {"32/40, 32/40"}}, RateLimitInfo{40, 8, time.Time{}}},
		{"differing members", http.Header{"X-Ratelimit-Remaining": {"5, 7"}, "X-Ratelimit-Reset": {"30, 60"}}, none},
		{"empty member", http.Header{"X-Ratelimit-Remaining": {"5, "}, "X-Ratelimit-Reset": {", 30"}}, none},
	}
	for _, tc := range tests {
		now := lazyNow{t: rlNow}
		if got := parseRateLimit(tc.h, &now).info; !got.Reset.Equal(tc.want.Reset) || got.Limit != tc.want.Limit || got.Remaining != tc.want.Remaining {
			t.Errorf("%s: parseRateLimit(%v) = %+v, want %+v", tc.name, tc.h, got, tc.want)
		}
	}

	clock := func() time.Time { return rlNow }
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After": {"30, 30"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {date + ", " + date}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {date}}, 30 * time.Second, true},
		{http.Header{"Retry-After-Ms": {"1500,1500"}}, 1500 * time.Millisecond, true},
		{http.Header{"Retry-After": {"30, 60"}}, 0, false},
	} {
		if got, ok := retryAfterHeader(tc.h, clock); got != tc.want || ok != tc.ok {
			t.Errorf("retryAfterHeader(%v) = %v, %v, want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
	// GitHub's spent quota behind a merging proxy: a rate limit.
	if h := (http.Header{"X-Ratelimit-Remaining": {"0, 0"}}); !rateLimited403(h) {
		t.Errorf("rateLimited403(%v) = false, want true", h)
	}
}

// TestRateLimitMergedRetryAfterWaits: a 429 whose Retry-After a proxy
// merged ("3, 3") is retried after the server's wait, not the backoff's,
// and the call after a success whose merged headers say the quota is
// spent waits for its reset instead of being sent into it. The retry was
// sent after 100ms, the backoff's base.
func TestRateLimitMergedRetryAfterWaits(t *testing.T) {
	t.Run("429", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			check429Waits3s(t, http.Header{"Retry-After": {"3, 3"}})
		})
	})
	t.Run("spent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := http.Header{"X-Ratelimit-Limit": {"10, 10"}, "X-Ratelimit-Remaining": {"0, 0"}, "X-Ratelimit-Reset": {"30, 30"}}
			s := &rtScript{steps: []rtStep{{status: 200, header: h, body: "spent"}, {status: 200, body: "ok"}}}
			tr := New(s)
			timedGet(t, tr, "http://api.test/")
			timedGet(t, tr, "http://api.test/")
			if w := s.call(1).at.Sub(s.call(0).at); w < 30*time.Second {
				t.Errorf("after a success with %v: the next call was sent after %v, want the reset (30s)", h, w)
			}
		})
	})
}
