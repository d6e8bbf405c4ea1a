package resilient_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/resilienthttp/resilient"
)

// TestReportWaitedCountsEveryWait: issue 17's Report holds "the time spent
// waiting (backoff, Retry-After, rate limit)". A call whose first attempt
// waits 2s for the client-side rate limiter, whose 503 is retried after a
// backoff of 1s, and whose retry waits 1s more for the limiter, reports
// exactly those 4s, its two attempts and its success.
func TestReportWaitedCountsEveryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &answers{steps: []answer{{status: 200}, {status: 503}, {status: 200}}}
		// One token every 2s; a backoff of exactly 1s (its cap).
		tr := resilient.New(base, resilient.WithRateLimit(0.5, 1), resilient.WithBackoff(time.Second, time.Second))
		const url = "http://api.test/v1/posts"
		if status, _, err := call(t, tr, context.Background(), "GET", url, nil); status != 200 {
			t.Fatalf("first call: %d, %v", status, err) // takes the limiter's token
		}
		var r resilient.Report
		status, _, err := call(t, tr, resilient.WithReport(context.Background(), &r), "GET", url, nil)
		want := resilient.Report{Attempts: 2, Waited: 4 * time.Second, Duration: 4 * time.Second, Outcome: resilient.OutcomeSuccess, StatusCode: 200}
		if status != 200 || r != want {
			t.Errorf("second call: %d, %v, Report %+v; want 200 and %+v", status, err, r, want)
		}
		at, _, _ := base.sent()
		if len(at) != 3 || at[1].Sub(at[0]) != 2*time.Second || at[2].Sub(at[1]) != 2*time.Second {
			t.Errorf("requests sent at %v; want 0s, 2s, 4s", at)
		}
	})
}

// TestAttemptHeaderPerCallMaxAttempts: WithAttemptHeader sends "n/max"
// (issue 7), max being the call's own: with WithCallOptions(ctx,
// WithMaxRetries(2)), a GET failing throughout sends 1/3, 2/3 and 3/3,
// while the Transport's other calls count to 6. Set per call on a
// Transport without it, the header is sent by that call only.
func TestAttemptHeaderPerCallMaxAttempts(t *testing.T) {
	const url = "http://api.test/v1/posts"
	for _, tc := range []struct {
		name      string
		transport []resilient.Option
		call      []resilient.Option
		want      string
	}{
		{"transport's", []resilient.Option{resilient.WithAttemptHeader("X-Retry-Attempt")}, nil, "1/6,2/6,3/6,4/6,5/6,6/6"},
		{"transport's, call's retries", []resilient.Option{resilient.WithAttemptHeader("X-Retry-Attempt")}, []resilient.Option{resilient.WithMaxRetries(2)}, "1/3,2/3,3/3"},
		{"call's", nil, []resilient.Option{resilient.WithAttemptHeader("X-Retry-Attempt"), resilient.WithMaxRetries(1)}, "1/2,2/2"},
		{"off", nil, nil, ",,,,,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &answers{steps: []answer{{status: 503}}}
			tr := resilient.New(base, append([]resilient.Option{resilient.WithBackoff(0, 0)}, tc.transport...)...)
			ctx := context.Background()
			if tc.call != nil {
				ctx = resilient.WithCallOptions(ctx, tc.call...)
			}
			if status, _, err := call(t, tr, ctx, "GET", url, nil); status != 503 {
				t.Fatalf("%d, %v; want the last 503", status, err)
			}
			_, _, headers := base.sent()
			var got []string
			for _, h := range headers {
				got = append(got, h.Get("X-Retry-Attempt"))
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("X-Retry-Attempt sent: %q, want %q", strings.Join(got, ","), tc.want)
			}
		})
	}
}

// TestWithBackoffAfterWithBackOff: "a later option overrides an earlier one
// of the same kind" (Option), and WithBackoff and WithBackOff both set the
// delays between attempts. On a Transport whose delays come from a caller's
// BackOff (10s apart), a call made WithCallOptions(ctx, WithBackoff(0, 0))
// retries at once, and one made with WithBackoff(time.Second, time.Second)
// waits 1s; the Transport's other calls keep the BackOff's 10s. Given to
// New in the other order, the later WithBackOff wins.
func TestWithBackoffAfterWithBackOff(t *testing.T) {
	const url = "http://api.test/v1/posts"
	tenSeconds := func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Second) }
	for _, tc := range []struct {
		name      string
		transport []resilient.Option
		call      []resilient.Option
		want      time.Duration
	}{
		{"transport's BackOff", []resilient.Option{resilient.WithBackOff(tenSeconds)}, nil, 10 * time.Second},
		{"call's WithBackoff(0, 0)", []resilient.Option{resilient.WithBackOff(tenSeconds)}, []resilient.Option{resilient.WithBackoff(0, 0)}, 0},
		{"call's WithBackoff(1s, 1s)", []resilient.Option{resilient.WithBackOff(tenSeconds)}, []resilient.Option{resilient.WithBackoff(time.Second, time.Second)}, time.Second},
		{"WithBackoff after WithBackOff", []resilient.Option{resilient.WithBackOff(tenSeconds), resilient.WithBackoff(0, 0)}, nil, 0},
		{"WithBackOff after WithBackoff", []resilient.Option{resilient.WithBackoff(0, 0), resilient.WithBackOff(tenSeconds)}, nil, 10 * time.Second},
		{"call's WithBackOff", []resilient.Option{resilient.WithBackoff(0, 0)}, []resilient.Option{resilient.WithBackOff(tenSeconds)}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{{status: 503}, {status: 200}}}
				tr := resilient.New(base, tc.transport...)
				ctx := context.Background()
				if tc.call != nil {
					ctx = resilient.WithCallOptions(ctx, tc.call...)
				}
				if status, _, err := call(t, tr, ctx, "GET", url, nil); status != 200 {
					t.Fatalf("%d, %v; want the retry's 200", status, err)
				}
				at, _, _ := base.sent()
				if d := at[1].Sub(at[0]); d != tc.want {
					t.Errorf("retry sent %v after the first attempt, want %v", d, tc.want)
				}
			})
		})
	}
}
