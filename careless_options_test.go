package resilient

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"
)

// neverBackOff is a BackOff whose every delay is the largest Duration, as
// "never" is sometimes written instead of backoff.Stop.
type neverBackOff struct{}

func (neverBackOff) NextBackOff() time.Duration { return math.MaxInt64 }
func (neverBackOff) Reset()                     {}

// TestHugeBackoffKeepsTheBudget: a delay near the largest Duration
// (WithBackoff(math.MaxInt64, math.MaxInt64), or a BackOff that returns
// math.MaxInt64 for "never") before the retry of a write whose host is not
// known to deduplicate (a 429 proves it unprocessed) overflowed, added to
// the time the retry needs, to a negative wait that passed the deadline's
// check: the call waited past its budget until its context ended (for
// ever without a deadline) and returned the context's error, where it must
// return the 429 at once, as a plain client would.
func TestHugeBackoffKeepsTheBudget(t *testing.T) {
	for name, opt := range map[string]Option{
		"WithBackoff(MaxInt64, MaxInt64)": WithBackoff(math.MaxInt64, math.MaxInt64),
		"WithBackOff(never)":              WithBackOff(func() backoff.BackOff { return neverBackOff{} }),
	} {
		t.Run(name, func(t *testing.T) {
			// Real time (a wait of the largest Duration crashes a
			// synctest bubble's runtime), with bounds no loaded machine
			// comes near: the budget is 30s, and the context's 5s only
			// ends the test when the wait passes the budget.
			s := &rtScript{steps: []rtStep{{status: http.StatusTooManyRequests}}}
			tr := New(s, WithoutRateLimit(), opt, WithMaxElapsed(30*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodPost, "http://api.test/", strings.NewReader("x")))
			if err != nil {
				t.Fatalf("RoundTrip: %v after %d attempts; want the 429 at once: the wait passes the budget", err, s.numCalls())
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || s.numCalls() != 1 {
				t.Errorf("status %d after %d attempts, want 429 after 1", resp.StatusCode, s.numCalls())
			}
		})
	}
}

// panicsNaming checks that fn panics with a message starting with prefix.
func panicsNaming(t *testing.T, what, prefix string, fn func()) {
	t.Helper()
	p := mustPanic(t, what+" did not panic", fn)
	if msg, _ := p.(string); p != nil && !strings.HasPrefix(msg, prefix) {
		t.Errorf("%s panicked with %v, want a message starting with %q", what, p, prefix)
	}
}

// TestMaxRetryAfterBelowFloorPanics: WithMaxRetryAfter(60), meant as a
// minute, is 60ns: New accepted it, and every Retry-After was returned at
// once (a 429 asking for a second was the call's answer after one
// attempt), as was every wait of the rate limiter for a pause. New panics
// on a non-zero value below 1ms, as on the other units mistakes; zero (no
// server's wait) and 1ms are accepted, and per call it applies as given.
func TestMaxRetryAfterBelowFloorPanics(t *testing.T) {
	for _, d := range []time.Duration{1, 60, 999 * time.Microsecond} {
		panicsNaming(t, fmt.Sprintf("New(WithMaxRetryAfter(%d))", d),
			fmt.Sprintf("resilient: WithMaxRetryAfter: %v is below the floor of 1ms", d),
			func() { New(nil, WithMaxRetryAfter(d)) })
	}
	New(nil, WithMaxRetryAfter(0))
	New(nil, WithMaxRetryAfter(time.Millisecond))
	s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"1"}}}, {status: 200}}}
	ctx := WithCallOptions(context.Background(), WithMaxRetryAfter(60))
	resp, err := roundTrip(t, New(s, WithoutRateLimit()), newRequest(t, ctx, "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || s.numCalls() != 1 {
		t.Errorf("per-call WithMaxRetryAfter(60): status %d after %d attempts, want the 429 after 1: it applies as given", resp.StatusCode, s.numCalls())
	}
}

// TestInvalidTablesAndListsPanic: options that take codes, methods or hosts
// panic, naming the option, on a value no answer or request can match,
// which they took silently: a code's Class(9) (it acted as Permanent), a
// method net/http cannot send (" PATCH", split from "POST, PATCH": PATCH
// writes silently got no key), and a host no request names (a wildcard, a
// comma-separated list, a port that is no number, a port alone, a control
// character: the caller's hosts were silently not named, and their writes
// not resent).
func TestInvalidTablesAndListsPanic(t *testing.T) {
	for _, cl := range []Class{-1, 4, 9} {
		panicsNaming(t, fmt.Sprintf("WithCodes(x: %v)", cl), `resilient: WithCodes: code "x": `,
			func() { WithCodes(map[string]Class{"x": cl}) })
	}
	WithCodes(map[string]Class{"a": Success, "b": Transient, "c": Throttled, "d": Permanent})
	WithCodes(nil)

	for _, m := range []string{"", " PATCH", "POST,PATCH", "PO ST", "GET\n"} {
		panicsNaming(t, fmt.Sprintf("WithIdempotencyMethods(%q)", m), "resilient: WithIdempotencyMethods: invalid method ",
			func() { WithIdempotencyMethods(http.MethodPost, m) })
	}
	WithIdempotencyMethods()
	WithIdempotencyMethods("PUT", "post", "X-CUSTOM") // any valid method, matched as given

	for _, h := range []string{"*.api.test", "a.test,b.test", "a.test;b.test", "api.test:abc", "api.test:99999", ":443", "api.test\t", "api.test\n", "api.test\x7f"} {
		panicsNaming(t, fmt.Sprintf("WithKeyHonoringHosts(%q)", h), "resilient: WithKeyHonoringHosts: invalid host ",
			func() { WithKeyHonoringHosts(h) })
	}
	WithKeyHonoringHosts("api.test:", "api.test:0443", "API.Test.", "::1", "[::1]:8443", "bücher.example", "a_b.test:65535")
}

// TestNonFiniteSettingsPanic: every float field refuses NaN and the
// infinities it cannot mean with a panic naming the option and the field
// (a NaN compares false with every bound, and would have disabled it).
func TestNonFiniteSettingsPanic(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		what, prefix string
		fn           func()
	}{
		{"WithRateLimit(NaN)", "resilient: WithRateLimit: rate NaN", func() { WithRateLimit(rate.Limit(nan), 1) }},
		{"WithRateLimit(-Inf)", "resilient: WithRateLimit: rate -Inf", func() { WithRateLimit(rate.Limit(-inf), 1) }},
		{"RetryBudget Ratio NaN", "resilient: WithRetryBudget Ratio: NaN", func() { WithRetryBudget(RetryBudget{Ratio: nan}) }},
		{"RetryBudget Ratio +Inf", "resilient: WithRetryBudget Ratio: +Inf", func() { WithRetryBudget(RetryBudget{Ratio: inf}) }},
		{"RetryBudget Burst NaN", "resilient: WithRetryBudget Burst: NaN", func() { WithRetryBudget(RetryBudget{Burst: nan}) }},
		{"RetryBudget Burst -Inf", "resilient: WithRetryBudget Burst: -Inf", func() { WithRetryBudget(RetryBudget{Burst: -inf}) }},
		{"RetryBudget ThrottledCost NaN", "resilient: WithRetryBudget ThrottledCost: NaN", func() { WithRetryBudget(RetryBudget{ThrottledCost: nan}) }},
		{"RetryBudget ThrottledCost +Inf", "resilient: WithRetryBudget ThrottledCost: +Inf", func() { WithRetryBudget(RetryBudget{ThrottledCost: inf}) }},
		{"RetryBudget ThrottledCost 1.5", "resilient: WithRetryBudget ThrottledCost: 1.5 is above 1", func() { WithRetryBudget(RetryBudget{ThrottledCost: 1.5}) }},
		{"Breaker FailureRatio +Inf", "resilient: WithBreaker FailureRatio: +Inf", func() { WithBreaker(BreakerSettings{FailureRatio: inf}) }},
		{"Breaker FailureRatio -Inf", "resilient: WithBreaker FailureRatio: -Inf", func() { WithBreaker(BreakerSettings{FailureRatio: -inf}) }},
		{"Hedging Quantile NaN", "resilient: WithHedging Quantile: NaN", func() { WithHedging(Hedging{Quantile: nan}) }},
		{"Hedging Quantile +Inf", "resilient: WithHedging Quantile: +Inf", func() { WithHedging(Hedging{Quantile: inf}) }},
		{"Hedging Quantile -Inf", "resilient: WithHedging Quantile: -Inf", func() { WithHedging(Hedging{Quantile: -inf}) }},
	} {
		panicsNaming(t, tc.what, tc.prefix, tc.fn)
	}
	WithRateLimit(rate.Inf, 0) // no static pacing: the burst is unused
}

// TestExtremeSettingsStillWork: the largest values each option takes, as
// "no limit" is sometimes written, are accepted and neither overflow nor
// panic at call time: a PUT whose body has no GetBody, answered 503 with
// an envelope, then 200 with a body, is retried once and returns the 200
// and its body.
func TestExtremeSettingsStillWork(t *testing.T) {
	for name, opt := range map[string]Option{
		"WithMaxRetries(MaxInt)":         WithMaxRetries(math.MaxInt),
		"WithMaxElapsed(MaxInt64)":       WithMaxElapsed(math.MaxInt64),
		"WithAttemptTimeout(MaxInt64)":   WithAttemptTimeout(math.MaxInt64),
		"WithMaxRetryAfter(MaxInt64)":    WithMaxRetryAfter(math.MaxInt64),
		"WithMaxBufferedBody(MaxInt64)":  WithMaxBufferedBody(math.MaxInt64),
		"WithBufferedResponse(MaxInt64)": WithBufferedResponse(math.MaxInt64),
		"WithMaxPeek(MaxInt64)":          WithMaxPeek(math.MaxInt64),
		"WithMaxInFlight(MaxInt)":        WithMaxInFlight(math.MaxInt),
		"WithRateLimit(1e300, MaxInt)":   WithRateLimit(1e300, math.MaxInt),
		"WithRetryBudget(1e300...)":      WithRetryBudget(RetryBudget{Ratio: 1e300, Burst: 1e300, ThrottledCost: 1}),
		"WithBreaker(MaxInt counts)":     WithBreaker(BreakerSettings{ConsecutiveFailures: math.MaxInt, MinRequests: math.MaxInt, HalfOpenRequests: math.MaxInt}),
		"WithHedging(MaxInt, MaxInt64)":  WithHedging(Hedging{MaxHedges: math.MaxInt, Delay: math.MaxInt64}),
		"WithBackoff(0, MaxInt64)":       WithBackoff(0, math.MaxInt64),
	} {
		t.Run(name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: 503, body: `{"error":{"code":"unavailable","message":"down"}}`}, {status: 200, body: "done"}}}
			tr := New(s, fastRetries, opt)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "PUT", "http://api.test/", io.MultiReader(strings.NewReader("body"))))
			if err != nil {
				t.Fatal(err)
			}
			if got := readBody(t, resp); resp.StatusCode != 200 || got != "done" || s.numCalls() != 2 || string(s.call(1).body) != "body" {
				t.Errorf("status %d, body %q after %d attempts (second sent %q); want 200 \"done\" after 2, the body replayed", resp.StatusCode, got, s.numCalls(), s.call(1).body)
			}
		})
	}
}

// TestKeyHonoringHostsPanicHidesCredentials: a URL given to
// WithKeyHonoringHosts in place of a host, as a service's configured base
// URL often is ("https://user:token@api.example.com/v1?api_key=…"),
// panics, as any invalid host does; but the panic, which reaches the
// process's stderr and crash reports, quoted it whole, the credentials
// it carries included, where every error of the Transport shows a URL
// without its user information, query and fragment (see redactURL). It
// still names the option and shows the host.
func TestKeyHonoringHostsPanicHidesCredentials(t *testing.T) {
	for _, h := range []string{
		"https://user:s3cret@api.example.com",
		"user:s3cret@api.example.com",
		"s3cret@api.example.com:443",
		"api.example.com?api_key=s3cret",
		"https://api.example.com/v1?access_token=s3cret#s3cret",
	} {
		p := mustPanic(t, fmt.Sprintf("WithKeyHonoringHosts(%q) did not panic", h), func() { WithKeyHonoringHosts(h) })
		msg, _ := p.(string)
		if strings.Contains(msg, "s3cret") || !strings.HasPrefix(msg, "resilient: WithKeyHonoringHosts: invalid host ") || !strings.Contains(msg, "api.example.com") {
			t.Errorf("WithKeyHonoringHosts(%q) panicked with %q; want the option and the host named, without the credential", h, msg)
		}
	}
}
