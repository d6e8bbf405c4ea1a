package resilient

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestClassifierRetriedSuccessWaitsRetryAfter: a response below 400 that a
// Classifier makes retryable (a 202 "still computing, come back in 3
// seconds", a 200 whose body says it was rate limited) is retried after
// the server's Retry-After, as Throttled promises ("retry after the
// server's wait"), and as a 4xx or 5xx with the same header is: not after
// the backoff alone, which sent the retry ten times sooner than the
// server asked, nor past WithMaxRetryAfter.
func TestClassifierRetriedSuccessWaitsRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  Class
	}{
		{http.StatusAccepted, Throttled},
		{http.StatusAccepted, Transient},
		{http.StatusOK, Throttled},
	} {
		t.Run(http.StatusText(tc.status)+" "+tc.class.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{
					{status: tc.status, header: http.Header{"Retry-After": {"3"}}},
					{status: http.StatusOK, body: "done"},
				}}
				var seen []Attempt
				tr := New(s, WithBackoff(100*time.Millisecond, 200*time.Millisecond), WithoutBreaker(), withRand(func(int64) int64 { return 0 }),
					WithObserver(func(a Attempt) { seen = append(seen, a) }),
					WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
						if resp != nil && resp.StatusCode == tc.status && resp.Header.Get("Retry-After") != "" {
							return tc.class
						}
						return def
					}))
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				resp.Body.Close()
				if n := s.numCalls(); n != 2 {
					t.Fatalf("%d %v: %d attempts, want 2", tc.status, tc.class, n)
				}
				if gap := s.call(1).at.Sub(s.call(0).at); gap < 3*time.Second {
					t.Errorf("%d classified %v with Retry-After: 3: retried after %v, want at least 3s (Attempt.RetryAfter %v)",
						tc.status, tc.class, gap, seen[0].RetryAfter)
				}
			})
		})
	}

	// Without a Retry-After, a success made Throttled waits for the quota
	// reset it announced, with the rate limiter or without it.
	for _, limiter := range []bool{true, false} {
		t.Run(fmt.Sprintf("reset, rate limiter %v", limiter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reset := strconv.FormatInt(time.Now().Add(3*time.Second).Unix(), 10)
				s := &rtScript{steps: []rtStep{
					{status: http.StatusOK, header: http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, body: `{"ok":false,"error":"ratelimited"}`},
					{status: http.StatusOK, body: "done"},
				}}
				opts := []Option{WithBackoff(100*time.Millisecond, 200*time.Millisecond), WithoutBreaker(), withRand(func(int64) int64 { return 0 }),
					WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
						if resp != nil && resp.Header.Get("X-Ratelimit-Remaining") == "0" {
							return Throttled
						}
						return def
					})}
				if !limiter {
					opts = append(opts, WithoutRateLimit())
				}
				resp, _ := roundTrip(t, New(s, opts...), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				resp.Body.Close()
				if n := s.numCalls(); n != 2 {
					t.Fatalf("%d attempts, want 2", n)
				}
				if gap := s.call(1).at.Sub(s.call(0).at); gap < 2*time.Second {
					t.Errorf("200 classified throttled with its quota spent until a reset 3s ahead, rate limiter %v: retried after %v, want at least 2s", limiter, gap)
				}
			})
		})
	}

	// A wait longer than WithMaxRetryAfter returns the response at once.
	t.Run("past WithMaxRetryAfter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: http.StatusAccepted, header: http.Header{"Retry-After": {"120"}}}}}
			tr := New(s, WithoutBreaker(), WithMaxRetryAfter(time.Minute),
				WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
					if resp != nil && resp.StatusCode == http.StatusAccepted {
						return Throttled
					}
					return def
				}))
			rep := new(Report)
			resp, _ := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), rep), "GET", "http://api.test/", nil))
			resp.Body.Close()
			if n := s.numCalls(); n != 1 || rep.StopReason != StopRetryAfterTooLong {
				t.Errorf("202 with Retry-After: 120 past WithMaxRetryAfter(1m): %d attempts, stop %q; want 1, %q", n, rep.StopReason, StopRetryAfterTooLong)
			}
		})
	})
}
