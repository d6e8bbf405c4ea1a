package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitRepeatedLinesRead: of a rate-limit field of the
// Limit/Remaining/Reset families given on several lines, the first
// well-formed value among the first maxHintLines lines is read, as it is
// of Retry-After, so that an empty or malformed line a proxy adds before
// the server's own does not hide the quota; of two well-formed ones, the
// first. Only the first line was read: "X-RateLimit-Remaining: " then
// "X-RateLimit-Remaining: 0" announced nothing, and a 403 with them was a
// refusal.
func TestRateLimitRepeatedLinesRead(t *testing.T) {
	none := RateLimitInfo{-1, -1, time.Time{}}
	tests := []struct {
		name string
		h    http.Header
		want RateLimitInfo
	}{
		{"X-RateLimit, empty lines first", http.Header{"X-Ratelimit-Limit": {"", "10"}, "X-Ratelimit-Remaining": {"", "0"}, "X-Ratelimit-Reset": {" ", "30"}},
			RateLimitInfo{10, 0, rlNow.Add(30 * time.Second)}},
		{"X-Rate-Limit, malformed lines first", http.Header{"X-Rate-Limit-Limit": {"many", "10"}, "X-Rate-Limit-Remaining": {"-1", "4"}, "X-Rate-Limit-Reset": {"soon", "30"}},
			RateLimitInfo{10, 4, rlNow.Add(30 * time.Second)}},
		{"older drafts", http.Header{"Ratelimit-Remaining": {"", "3"}}, RateLimitInfo{-1, 3, time.Time{}}},
		{"OpenAI", http.Header{"X-Ratelimit-Limit-Requests": {"", "60"}, "X-Ratelimit-Remaining-Requests": {"", "0"}, "X-Ratelimit-Reset-Requests": {"", "1s"}},
			RateLimitInfo{60, 0, rlNow.Add(time.Second)}},
		{"two well-formed: the first", http.Header{"X-Ratelimit-Remaining": {"5", "0"}}, RateLimitInfo{-1, 5, time.Time{}}},
		{"past maxHintLines", http.Header{"X-Ratelimit-Remaining": {"", "", "", "", "0"}}, none},
	}
	for _, tc := range tests {
		now := lazyNow{t: rlNow}
		if got := parseRateLimit(tc.h, &now).info; !got.Reset.Equal(tc.want.Reset) || got.Limit != tc.want.Limit || got.Remaining != tc.want.Remaining {
			t.Errorf("%s: parseRateLimit(%v) = %+v, want %+v", tc.name, tc.h, got, tc.want)
		}
	}
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"X-Ratelimit-Remaining": {"", "0"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"", "0"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"5", "0"}}, false},
	} {
		if got := rateLimited403(tc.h); got != tc.want {
			t.Errorf("rateLimited403(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestRateLimitRepeatedLinesWaits: GitHub's spent primary quota behind a
// proxy that adds an empty line before each X-RateLimit-* field: the 403
// is retried after X-RateLimit-Reset, with and without the rate limiter
// (the retry loop reads the reset as the rate limiter does), not returned
// as a refusal, nor retried after the backoff's wait.
func TestRateLimitRepeatedLinesWaits(t *testing.T) {
	checkSpent403WaitsReset(t, http.Header{
		"X-Ratelimit-Limit":     {"", "5000"},
		"X-Ratelimit-Remaining": {"", "0"},
		"X-Ratelimit-Reset":     {"", "30"},
	})
}

// checkSpent403WaitsReset checks that a 403 with h, which says its quota
// is spent until a reset 30 s away, is retried after that reset, with and
// without the rate limiter (the retry loop reads the reset as the rate
// limiter does), not returned as a refusal, nor retried after the
// backoff's wait.
func checkSpent403WaitsReset(t *testing.T, h http.Header) {
	t.Helper()
	for _, limiter := range []bool{true, false} {
		t.Run("limiter="+strconv.FormatBool(limiter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{
					{status: 403, header: h, body: "spent"},
					{status: 200, body: "second"},
				}}
				opts := []Option{WithoutRetryBudget(), withRand(func(int64) int64 { return 0 })}
				if !limiter {
					opts = append(opts, WithoutRateLimit())
				}
				resp, err := roundTrip(t, New(s, opts...), newRequest(t, t.Context(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatalf("RoundTrip error = %v", err)
				}
				if got := readBody(t, resp); got != "second" || s.numCalls() != 2 {
					t.Fatalf("got %q after %d attempts, want a retry after the reset", got, s.numCalls())
				}
				if w := s.call(1).at.Sub(s.call(0).at); w < 30*time.Second || w > 31*time.Second {
					t.Errorf("waited %v, want the reset's 30s", w)
				}
			})
		})
	}
}

// TestServerWaitRepeatedResetLines: the wait a rate-limited 403 asks for
// (its X-RateLimit-Reset, which the retry loop, the retry budget and
// APIError.RetryAfter read) is read from the first of its first lines that
// gives one, as the rate limiter reads the reset. Only the first line was
// read: an empty one before the server's said that the server asked for
// no wait.
func TestServerWaitRepeatedResetLines(t *testing.T) {
	clock := func() time.Time { return rlNow }
	for _, tc := range []struct {
		reset []string
		want  time.Duration
		ok    bool
	}{
		{[]string{"", "30"}, 30 * time.Second, true},
		{[]string{"soon", "30, 30"}, 30 * time.Second, true},
		{[]string{"20", "30"}, 20 * time.Second, true},
		{[]string{"", "", "", "", "30"}, 0, false}, // past maxHintLines
	} {
		h := http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": tc.reset}
		if got, ok := serverWait(http.StatusForbidden, h, Throttled, clock); got != tc.want || ok != tc.ok {
			t.Errorf("serverWait(403, %v) = %v, %v, want %v, %v", h, got, ok, tc.want, tc.ok)
		}
	}
}
