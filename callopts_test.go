package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestWithCallOptions(t *testing.T) {
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
	tr := New(s, fastRetries)
	ctx := WithCallOptions(context.Background(), WithMaxRetries(0))
	resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
	if err != nil || resp.StatusCode != 503 || s.numCalls() != 1 {
		t.Fatalf("WithMaxRetries(0) for one call: %v, %v after %d attempts; want the 503 after exactly one", resp, err, s.numCalls())
	}
	resp.Body.Close()
	// The Transport's own options are untouched for the other calls.
	resp, err = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil || resp.StatusCode != 200 || s.numCalls() != 3 {
		t.Fatalf("next call: %v, %v after %d attempts in all; want 200 after 3", resp, err, s.numCalls())
	}
	resp.Body.Close()
}

func TestWithCallOptionsNestAndApplyEach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Outer options first, inner ones after: the inner backoff wins.
		ctx := WithCallOptions(context.Background(), WithMaxRetries(1), WithBackoff(time.Second, time.Second))
		ctx = WithCallOptions(ctx, WithBackoff(3*time.Second, 3*time.Second), withRand(func(int64) int64 { return 0 }))
		s := &rtScript{steps: []rtStep{{status: 503}}}
		resp, _ := roundTrip(t, New(s), newRequest(t, ctx, "GET", "http://api.test/", nil))
		resp.Body.Close()
		if s.numCalls() != 2 {
			t.Fatalf("%d attempts, want 2 (outer WithMaxRetries(1))", s.numCalls())
		}
		if d := s.call(1).at.Sub(s.call(0).at); d != 3*time.Second {
			t.Errorf("waited %v, want the inner backoff's 3s", d)
		}

		// Attempt timeout, classifier and keys per call.
		s = &rtScript{steps: []rtStep{{hang: true}, {status: 418}, {status: 200}}}
		var keys []string
		ctx = WithCallOptions(context.Background(),
			WithAttemptTimeout(time.Second),
			WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
				if resp != nil && resp.StatusCode == 418 {
					return Transient
				}
				return def
			}),
			WithoutIdempotencyKeys())
		tr := New(s, fastRetries, WithKeyHonoringHosts("api.test"), WithObserver(func(a Attempt) { keys = append(keys, a.IdempotencyKey) }))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "PUT", "http://api.test/", strings.NewReader("x")))
		if err != nil || resp.StatusCode != 200 || s.numCalls() != 3 {
			t.Fatalf("%v, %v after %d attempts; want 200 after a timeout and a 418 retried", resp, err, s.numCalls())
		}
		resp.Body.Close()
		if strings.Join(keys, "") != "" {
			t.Errorf("keys %q, want none", keys)
		}
	})
}

func TestWithCallOptionsRejectsPerTransport(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"WithBreaker", WithBreaker(BreakerSettings{})},
		{"WithoutBreaker", WithoutBreaker()},
		{"WithRateLimit", WithRateLimit(1, 1)},
		{"WithoutRateLimit", WithoutRateLimit()},
		{"WithLogger", WithLogger(nil)},
		{"WithObserver", WithObserver(func(Attempt) {})},
		{"WithRetryBudget", WithRetryBudget(RetryBudget{})},
		{"WithKeyHonoringHosts", WithKeyHonoringHosts("a.test")},
		{"WithCodes", WithCodes(nil)},
		{"WithTracer", WithTracer(nil)},
		{"WithBreakerObserver", WithBreakerObserver(func(BreakerChange) {})},
		{"WithoutRetryBudget", WithoutRetryBudget()},
		{"WithMaxPeek", WithMaxPeek(1)},
		{"WithIdempotencyHeader", WithIdempotencyHeader("X-Idempotency-Key")},
		{"WithRateLimitKey", WithRateLimitKey(func(*http.Request) string { return "" })},
		{"WithRateLimitParser", WithRateLimitParser(func(http.Header, time.Time) (RateLimitInfo, bool) { return RateLimitInfo{}, false })},
		{"WithContextObserver", WithContextObserver(func(context.Context, Attempt) {})},
		{"WithQuotaStore", WithQuotaStore(nil)},
		{"WithQuotaStore", WithQuotaStore(new(memQuota))},
		{"WithMaxInFlight", WithMaxInFlight(2)},
	} {
		func() {
			defer func() {
				r := recover()
				if msg := fmt.Sprint(r); r == nil || !strings.Contains(msg, tc.name) || !strings.Contains(msg, "per Transport") {
					t.Errorf("WithCallOptions(%s): panic %v, want one naming it as per Transport", tc.name, r)
				}
			}()
			WithCallOptions(context.Background(), WithMaxRetries(1), tc.opt)
		}()
	}
}

// TestCallValuesNest checks that WithCallOptions, WithReport and
// WithIdempotencyKey, which share one context key, keep what the others
// set, in any order: each call sends the caller's key on every attempt,
// applies the call's options (one retry) and fills the Report. An inner
// key replaces an outer one; an empty one is ignored.
func TestCallValuesNest(t *testing.T) {
	type wrap func(context.Context, *Report) context.Context
	withKey := func(k string) wrap {
		return func(ctx context.Context, _ *Report) context.Context { return WithIdempotencyKey(ctx, k) }
	}
	withOpts := func(ctx context.Context, _ *Report) context.Context {
		return WithCallOptions(ctx, WithMaxRetries(1))
	}
	withReport := func(ctx context.Context, r *Report) context.Context { return WithReport(ctx, r) }
	for _, tc := range []struct {
		name  string
		wraps []wrap // innermost first
	}{
		{"key-opts-report", []wrap{withKey("post-42"), withOpts, withReport}},
		{"key-report-opts", []wrap{withKey("post-42"), withReport, withOpts}},
		{"opts-key-report", []wrap{withOpts, withKey("post-42"), withReport}},
		{"opts-report-key", []wrap{withOpts, withReport, withKey("post-42")}},
		{"report-key-opts", []wrap{withReport, withKey("post-42"), withOpts}},
		{"report-opts-key", []wrap{withReport, withOpts, withKey("post-42")}},
		{"inner-key-wins", []wrap{withKey("outer"), withOpts, withReport, withKey("post-42")}},
		{"empty-key-ignored", []wrap{withKey("post-42"), withOpts, withReport, withKey("")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: 503}}}
			var r Report
			ctx := context.Background()
			for _, w := range tc.wraps {
				ctx = w(ctx, &r)
			}
			resp, err := roundTrip(t, New(s, fastRetries), newRequest(t, ctx, "POST", "http://api.test/v1/posts", strings.NewReader("x")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if n := s.numCalls(); n != 2 {
				t.Errorf("%d attempts, want 2 (WithMaxRetries(1))", n)
			}
			for i := range s.numCalls() {
				if k := s.call(i).header.Get("Idempotency-Key"); k != "post-42" {
					t.Errorf("attempt %d: Idempotency-Key %q, want post-42", i+1, k)
				}
			}
			if r.Attempts != 2 || r.StatusCode != 503 {
				t.Errorf("Report: %d attempts, status %d; want 2 and 503", r.Attempts, r.StatusCode)
			}
		})
	}
}

// TestWithCallOptionsSiblings checks that two contexts made with
// WithCallOptions from one outer context keep their own options: the
// outer options are shared, and appending to them must not write over a
// sibling's.
func TestWithCallOptionsSiblings(t *testing.T) {
	// Three options appended one by one leave room for a fourth.
	outer := WithCallOptions(context.Background(), WithMaxRetries(5), WithMaxElapsed(time.Minute), WithBackoff(time.Millisecond, time.Millisecond))
	none := WithCallOptions(outer, WithMaxRetries(0))
	two := WithCallOptions(outer, WithMaxRetries(2))
	for _, tc := range []struct {
		ctx  context.Context
		want int
	}{{none, 1}, {two, 3}} {
		s := &rtScript{steps: []rtStep{{status: 503}}}
		resp, err := roundTrip(t, New(s, fastRetries), newRequest(t, tc.ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := s.numCalls(); n != tc.want {
			t.Errorf("%d attempts, want %d", n, tc.want)
		}
	}
}

// TestWithCallOptionsMaxRetryAfterBoundsPause: a call's own
// WithMaxRetryAfter bounds the waits the server set for it in the rate
// limiter too (a pause after a 429), as it bounds the retry loop's: a call
// that accepts no wait longer than a second fails at once with
// ErrRateLimited during another call's 30-second pause, instead of waiting
// it out under the Transport's 60-second limit.
func TestWithCallOptionsMaxRetryAfterBoundsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				throttle(w, "30")
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxElapsed(0), WithMaxRetries(0))}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 429 {
			t.Fatalf("first call: %d, %v; want the 429", code, err)
		}
		ctx := WithCallOptions(context.Background(), WithMaxRetryAfter(time.Second))
		req, err := http.NewRequestWithContext(ctx, "GET", "http://api.test/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if waited := time.Since(start); waited > time.Second || !errors.Is(err, ErrRateLimited) {
			t.Errorf("call with WithMaxRetryAfter(1s) during a 30s pause: %v after %v; want ErrRateLimited at once", err, waited)
		}
		if n := len(srv.seen("")); n != 1 {
			t.Errorf("server saw %d requests, want 1 (the pause holds)", n)
		}
	})
}
