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

// TestDrainAfterBreakerChangeKeepsTheDeadline: the drain of the answer
// that trips its host's breaker, whose attempt's deadline stopped for the
// observers' time, still ends at that deadline (the call's budget, or the
// attempt timeout) when it comes before maxReadWait, as the drain of any
// response retried past does (TestStalledErrorBodyIsBounded): a stalled
// body used to hold the call for maxReadWait, past its budget.
func TestDrainAfterBreakerChangeKeepsTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []Option
		callOpts []Option
	}{
		{"budget", []Option{WithMaxElapsed(time.Second)}, nil},
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second)}, nil},
		{"call's budget", nil, []Option{WithMaxElapsed(time.Second)}},
		{"WithMaxInFlight delivers, budget", []Option{WithMaxInFlight(4), WithMaxElapsed(time.Second)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					calls++
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"text/html"}},
						Body: newStallBody(req.Context(), "<html>"), ContentLength: -1, Request: req}, nil
				})
				opts := append([]Option{WithBackoff(0, 0), WithMaxRetries(1),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}),
					WithBreakerObserver(func(BreakerChange) {})}, tc.opts...)
				ctx := context.Background()
				if tc.callOpts != nil {
					ctx = WithCallOptions(ctx, tc.callOpts...)
				}
				start := time.Now()
				resp, err := roundTrip(t, New(rt, opts...), newRequest(t, ctx, "GET", "http://api.test/", nil))
				d := time.Since(start)
				if err != nil {
					t.Fatalf("RoundTrip: %v after %v, want the 503", err, d)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || calls != 1 {
					t.Errorf("%d after %d attempts, want the 503 after 1", resp.StatusCode, calls)
				}
				if d != time.Second {
					t.Errorf("returned after %v, want %v: the attempt's deadline", d, time.Second)
				}
			})
		})
	}
}
