package resilient

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryAfterSpelledByHand: a response built by hand below the
// Transport (a stub, a cache, an adapter that fills the map itself) may
// hold its Retry-After, Retry-After-Ms or X-Ms-Retry-After-Ms under a key
// that is not canonical, as the vendors' documents spell them
// (http.Header{"retry-after-ms": …}); net/http's own keys are canonical.
// The server's wait is read all the same, as the rate-limit headers so
// spelled are (TestRateLimitHeadersSpelledByHand): the retry of a 429, a
// 503 or a 403 that asks for 30s is not sent before them, with the rate
// limiter and without it. Every lookup was by canonical key: the wait
// was ignored, the retry went at the backoff's first delay (under a
// second), and a 403 so spelled was a refusal, returned at once.
func TestRetryAfterSpelledByHand(t *testing.T) {
	for _, h := range []http.Header{
		{"retry-after": {"30"}},
		{"RETRY-AFTER": {"30"}},
		{"retry-after-ms": {"30000"}},
		{"x-ms-retry-after-ms": {"30000"}},
		{"Retry-After": {"soon"}, "retry-after": {"30"}}, // the canonical line malformed
	} {
		for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusForbidden} {
			for _, limiter := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/%d/limiter=%v", h, status, limiter), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						s := &rtScript{steps: []rtStep{{status: status, header: h}, {status: http.StatusOK}}}
						opts := []Option{WithoutBreaker()}
						if !limiter {
							opts = append(opts, WithoutRateLimit())
						}
						tr := New(s, opts...)
						done := make(chan struct{})
						go func() {
							defer close(done)
							resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
							if err != nil {
								t.Errorf("RoundTrip: %v", err)
								return
							}
							resp.Body.Close()
							if resp.StatusCode != http.StatusOK {
								t.Errorf("status %d, want the retry's 200", resp.StatusCode)
							}
						}()
						time.Sleep(29 * time.Second)
						synctest.Wait()
						if n := s.numCalls(); n != 1 {
							t.Errorf("%d server hits within 29s of a %d asking for 30s, want 1: the wait %v asks for was ignored", n, status, h)
						}
						<-done
						if n := s.numCalls(); n != 2 {
							t.Errorf("%d server hits in all, want 2", n)
						}
					})
				})
			}
		}
	}
}

// TestRetryAfterHeaderSpelledByHand checks retryAfterHeader on keys that
// are not canonical: read as their canonical spelling is, after it, in
// the same order whatever the map's iteration draws, and never when the
// canonical key holds a well-formed value.
func TestRetryAfterHeaderSpelledByHand(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{"retry-after": {"30"}}, 30 * time.Second, true},
		{http.Header{"retry-after-ms": {"1500"}}, 1500 * time.Millisecond, true},
		{http.Header{"x-ms-retry-after-ms": {"250"}}, 250 * time.Millisecond, true},
		{http.Header{"retry-after": {"Tue, 17 Feb 2026 14:00:20 GMT"}}, 20 * time.Second, true},
		{http.Header{"Retry-After": {"5"}, "retry-after": {"30"}}, 5 * time.Second, true},
		{http.Header{"Retry-After": {"5"}, "retry-after-ms": {"30"}}, 5 * time.Second, true}, // the canonical keys first
		{http.Header{"Retry-After": {"soon"}, "retry-after-ms": {"30"}}, 30 * time.Millisecond, true},
		{http.Header{"retry-after": {"Tue, 17 Feb 2026 14:03:20 GMT"}, "Date": {"Tue, 17 Feb 2026 14:03:00 GMT"}}, 20 * time.Second, true}, // read against Date
		{http.Header{"RETRY-AFTER": {"7"}, "retry-after": {"30"}}, 7 * time.Second, true},                                                  // the spellings in the order of their keys
		{http.Header{"retry-after": {"Tue, 17 Feb 2026 14:03:20 GMT"}, "date": {"Tue, 17 Feb 2026 14:03:00 GMT"}}, 20 * time.Second, true},
		{http.Header{"Retry-After": {"Tue, 17 Feb 2026 14:03:20 GMT"}, "date": {"Tue, 17 Feb 2026 14:03:00 GMT"}}, 200 * time.Second, true}, // Date alone spelled so is not read
		{http.Header{"retry-after": {"-1"}}, 0, false},
		{http.Header{"retry-afterx": {"30"}}, 0, false},
		{http.Header{}, 0, false},
	} {
		for range 5 { // the map's iteration order is drawn anew each time
			if d, ok := retryAfterHeader(tc.h, now); d != tc.want || ok != tc.ok {
				t.Errorf("retryAfterHeader(%v) = %v, %v, want %v, %v", tc.h, d, ok, tc.want, tc.ok)
				break
			}
		}
	}
}
