package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestRetryNotStartedWithAlmostNoTimeLeft: a retry whose wait would leave
// it less than the least a retry needs (a tenth of the attempt before it,
// 1ms at least) of the call's budget or its
// context's deadline is not sent: the call returns the last answer, as a
// plain client would have, with StopDeadline, and the host's breaker counts
// no attempt cut at once by the budget. Until 2026-12-07 such a retry was
// sent with 1ms left, cut at once (the server still did the work), and
// the cut counted as the host's failure. A retry with ample time still
// goes. Each host answers every attempt after latency, a 503 first, then
// a 200; the backoff waits 1s.
func TestRetryNotStartedWithAlmostNoTimeLeft(t *testing.T) {
	tests := []struct {
		name       string
		latency    time.Duration
		opts       []Option // the Transport's, beyond the test's own
		callOpts   []Option // per call
		ctxTimeout time.Duration
		wantStatus int
		wantHits   int
		wantStop   StopReason
	}{
		// The 503 comes after 298.999s of the 5-minute budget: 1ms left
		// after the wait.
		{name: "budget, 1ms left", latency: 298999 * time.Millisecond,
			wantStatus: 503, wantHits: 1, wantStop: StopDeadline},
		{name: "context deadline, 1ms left", latency: 298999 * time.Millisecond, ctxTimeout: DefaultMaxElapsed, opts: []Option{WithMaxElapsed(0)},
			wantStatus: 503, wantHits: 1, wantStop: StopDeadline},
		{name: "WithMaxElapsedSpent, 1ms left", latency: 238999 * time.Millisecond, callOpts: []Option{WithMaxElapsedSpent(time.Minute)},
			wantStatus: 503, wantHits: 1, wantStop: StopDeadline},
		// 5s left after the wait, less than a tenth of the 100s the
		// host took to answer.
		{name: "less than a tenth of the last attempt", latency: 100 * time.Second, opts: []Option{WithMaxElapsed(106 * time.Second)},
			wantStatus: 503, wantHits: 1, wantStop: StopDeadline},
		// 1.5s left when the call starts, 0.5s after the wait: less
		// than a tenth of the 20s attempt timeout, but the host answers
		// at once, and the retry has time for its answer.
		{name: "less than a tenth of the attempt timeout", opts: []Option{WithAttemptTimeout(20 * time.Second)},
			callOpts:   []Option{WithMaxElapsedSpent(DefaultMaxElapsed - 1500*time.Millisecond)},
			wantStatus: 200, wantHits: 2},
		// 199s left after the wait.
		{name: "ample time", latency: 100 * time.Second, wantStatus: 200, wantHits: 2},
		// 3.5s left when the call starts: a tenth of the attempt
		// timeout is bounded by the call's whole budget.
		{name: "short budget, long attempt timeout", opts: []Option{WithAttemptTimeout(time.Minute)},
			callOpts: []Option{WithMaxElapsed(3500 * time.Millisecond)}, wantStatus: 200, wantHits: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithLatency(tc.latency),
					resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Respond(http.StatusServiceUnavailable)))
				defer srv.Close()
				// Two failures in a row open the breaker: the 503 and a
				// retry the budget cut.
				opts := append([]Option{WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 2}), WithoutRetryBudget()}, tc.opts...)
				tr := New(srv.Transport(), opts...)
				defer tr.CloseIdleConnections()
				var rep Report
				ctx := WithReport(context.Background(), &rep)
				if tc.callOpts != nil {
					ctx = WithCallOptions(ctx, tc.callOpts...)
				}
				if tc.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
					defer cancel()
				}
				resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, srv.URL+"/v1/posts", nil))
				status := 0
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				synctest.Wait()
				if hits := srv.Stats().Requests; status != tc.wantStatus || hits != tc.wantHits || rep.StopReason != tc.wantStop {
					t.Errorf("status %d (%v) after %d requests, stop reason %q; want %d after %d, %q",
						status, err, hits, rep.StopReason, tc.wantStatus, tc.wantHits, tc.wantStop)
				}
				if st := tr.BreakerState(srv.URL); st != BreakerClosed {
					t.Errorf("breaker %v after %d requests, want %v: a retry never sent is no failure of the host", st, srv.Stats().Requests, BreakerClosed)
				}
			})
		})
	}
}

// TestFirstAttemptWithAlmostNoBudgetSendsNothing: a call given per call a
// budget below 1ms (WithMaxElapsed, or what WithMaxElapsedSpent left of
// the Transport's) fails before its first attempt, as one left nothing
// does: an attempt cut at once would reach the host for nothing. Until
// 2026-12-07 it was sent, and cut when its nanoseconds passed.
func TestFirstAttemptWithAlmostNoBudgetSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"WithMaxElapsed(1ns)", WithMaxElapsed(time.Nanosecond)},
		{"WithMaxElapsed(999µs)", WithMaxElapsed(999 * time.Microsecond)},
		{"WithMaxElapsedSpent leaving 5ns", WithMaxElapsedSpent(DefaultMaxElapsed - 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa)
				defer srv.Close()
				tr := New(srv.Transport())
				defer tr.CloseIdleConnections()
				var rep Report
				ctx := WithCallOptions(WithReport(context.Background(), &rep), tc.opt)
				resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, srv.URL+"/v1/posts", nil))
				if err == nil {
					resp.Body.Close()
				}
				synctest.Wait()
				if hits := srv.Stats().Requests; hits != 0 || !errors.Is(err, ErrAttemptTimeout) || rep.StopReason != StopDeadline {
					t.Errorf("%d requests, err %v, stop reason %q; want none, the budget's timeout, %q", hits, err, rep.StopReason, StopDeadline)
				}
			})
		})
	}
}
