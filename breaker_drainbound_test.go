package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestDrainAfterBreakerChangeIsBounded: the answer that trips its host's
// breaker, told to a breaker observer (or the logger) on the attempt's
// goroutine, is retried past at once (the retry is refused as forecast)
// and drained first, within maxReadWait as any response retried past is
// (TestStalledLockedBodyIsBounded), although the attempt's deadline
// stopped for the observers' time: a body whose Close waits for its
// stalled Read (net/http's gzip-decoded body, stalled in its gzip header)
// is cut through the attempt's context. It used to be cut by a Close
// only, which waited with the Read: the call hung for as long as the
// server stalled (here, until the caller's context ended an hour later),
// where a plain client returns the 503 at once.
func TestDrainAfterBreakerChangeIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"breaker observer", WithBreakerObserver(func(BreakerChange) {})},
		{"WithMaxInFlight delivers", WithMaxInFlight(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					calls++
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"text/html"}},
						Body: newLockedBody(req.Context(), "\x1f"), ContentLength: -1, Request: req}, nil
				})
				opts := []Option{WithBackoff(0, 0), WithMaxRetries(1),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}),
					WithBreakerObserver(func(BreakerChange) {}), tc.opt}
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				start := time.Now()
				resp, err := roundTrip(t, New(rt, opts...), newRequest(t, ctx, "GET", "http://api.test/", nil))
				d := time.Since(start)
				if err != nil {
					t.Fatalf("RoundTrip: %v after %v, want the 503", err, d)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || calls != 1 {
					t.Errorf("%d after %d attempts, want the 503 after 1 (the retry refused by the open breaker)", resp.StatusCode, calls)
				}
				if d != maxReadWait {
					t.Errorf("returned after %v, want %v", d, maxReadWait)
				}
			})
		})
	}
}
