package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryAfterRepeated: of a Retry-After (or Retry-After-Ms) given on
// several lines, the first well-formed value is read, so that an empty or
// malformed line a proxy adds before the server's own does not hide the
// server's wait; of two well-formed ones, the first, as Header.Get reads
// it. Only the first maxHintLines lines are looked at.
func TestRetryAfterRepeated(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"Retry-After": {"", "30"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {" ", "30"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {"soon", "30"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {"-1", "Tue, 17 Feb 2026 14:00:20 GMT"}}, 20 * time.Second, true},
		{http.Header{"Retry-After": {"30", "60"}}, 30 * time.Second, true},
		{http.Header{"Retry-After": {"", ""}}, 0, false},
		{http.Header{"Retry-After": {"", "", "", "", "30"}}, 0, false}, // past maxHintLines
		{http.Header{"Retry-After-Ms": {"", "1500"}, "Retry-After": {"30"}}, 1500 * time.Millisecond, true},
		{http.Header{"Retry-After-Ms": {"10ms", "1500"}}, 1500 * time.Millisecond, true},
		{http.Header{"X-Ms-Retry-After-Ms": {"-5", "250"}, "Retry-After": {"30"}}, 250 * time.Millisecond, true},
		{http.Header{"Retry-After-Ms": {"x", "y"}, "Retry-After": {"", "30"}}, 30 * time.Second, true},
	}
	for _, tc := range tests {
		if got, ok := retryAfterHeader(tc.h, clock); got != tc.want || ok != tc.ok {
			t.Errorf("retryAfterHeader(%v) = %v, %v, want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
	// GitHub's secondary rate limit, behind a proxy that adds an empty
	// Retry-After: a rate limit, not a refusal.
	if h := (http.Header{"Retry-After": {"", "60"}}); !rateLimited403(h) {
		t.Errorf("rateLimited403(%v) = false, want true", h)
	}
}

// TestRetryAfterRepeatedWaits: a 429 whose Retry-After comes after an
// empty line is retried after the server's wait, not the backoff's. It
// was retried after 100ms, the backoff's base, as if it had none.
func TestRetryAfterRepeatedWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		check429Waits3s(t, http.Header{"Retry-After": {"", "3"}})
	})
}

// check429Waits3s checks that a 429 with h, which asks for a wait of 3 s,
// is retried after it, not after the backoff's base of 100ms. Run it in a
// synctest bubble.
func check429Waits3s(t *testing.T, h http.Header) {
	t.Helper()
	s := &rtScript{steps: []rtStep{
		{status: 429, header: h, body: "first"},
		{status: 200, body: "second"},
	}}
	resp, err := roundTrip(t, New(s, WithBackoff(100*time.Millisecond, time.Minute), withRand(func(int64) int64 { return 0 })),
		newRequest(t, t.Context(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatalf("RoundTrip error = %v", err)
	}
	if got := readBody(t, resp); got != "second" || s.numCalls() != 2 {
		t.Fatalf("%v: got %q after %d attempts, want a retry", h, got, s.numCalls())
	}
	if w := s.call(1).at.Sub(s.call(0).at); w != 3*time.Second {
		t.Errorf("%v: waited %v, want 3s", h, w)
	}
}
