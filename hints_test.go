package resilient

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRetryHint(t *testing.T) {
	tests := []struct {
		h    http.Header
		want int8
	}{
		{nil, -1},
		{http.Header{}, -1},
		{http.Header{"Stripe-Should-Retry": {"true"}}, 1},
		{http.Header{"Stripe-Should-Retry": {"false"}}, 0},
		{http.Header{"X-Should-Retry": {"true"}}, 1},
		{http.Header{"X-Should-Retry": {"false"}}, 0},
		{http.Header{"X-Should-Retry": {" TRUE "}}, 1},
		{http.Header{"X-Should-Retry": {"False"}}, 0},
		{http.Header{"X-Should-Retry": {"1"}}, -1},
		{http.Header{"X-Should-Retry": {"yes"}}, -1},
		{http.Header{"X-Should-Retry": {""}}, -1},
		{http.Header{"X-Should-Retry": {"true", "false"}}, 1}, // the first value
		// Stripe's header first; a malformed one gives way to the other.
		{http.Header{"Stripe-Should-Retry": {"false"}, "X-Should-Retry": {"true"}}, 0},
		{http.Header{"Stripe-Should-Retry": {"?"}, "X-Should-Retry": {"true"}}, 1},
	}
	for _, tc := range tests {
		if got := retryHint(tc.h); got != tc.want {
			t.Errorf("retryHint(%v) = %d, want %d", tc.h, got, tc.want)
		}
	}
}

func TestRateLimited403(t *testing.T) {
	tests := []struct {
		h    http.Header
		want bool
	}{
		{nil, false},
		{http.Header{"Retry-After": {"60"}}, true},
		{http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, true},
		{http.Header{"Retry-After": {" "}}, false},
		{http.Header{"Retry-After": {"soon"}}, false},
		{http.Header{"Retry-After": {"-1"}}, false},
		{http.Header{"Retry-After": {"10s"}}, false},
		{http.Header{"Retry-After": {"1.5"}}, false},
		{http.Header{"Retry-After": {"NaN"}}, false},
		{http.Header{"Retry-After-Ms": {"10ms"}}, false},
		{http.Header{"X-Ms-Retry-After-Ms": {"-5"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"0"}}, true},
		{http.Header{"X-Ratelimit-Remaining": {" 0 "}}, true},
		{http.Header{"X-Ratelimit-Remaining": {"1"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"00"}}, true}, // 0, as the rate limiter reads it (parseCount)
		{http.Header{"X-Ratelimit-Remaining": {""}}, false},
		{http.Header{"X-Ratelimit-Limit": {"0"}}, false},
		// Discord's bucket headers come with every answer: a 403 is
		// never its rate limit's (TestDiscordMissingPermissions).
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Bucket": {"messages-1"}}, false},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Bucket": {"messages-1"}, "Retry-After": {"5"}}, true},
	}
	for _, tc := range tests {
		if got := rateLimited403(tc.h); got != tc.want {
			t.Errorf("rateLimited403(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestForbiddenWithMalformedRetryAfter: a 403 whose Retry-After is no
// Retry-After (a unit, a sign, a word) is a refusal, answered once as a
// plain client would: the malformed value is ignored, as everywhere else,
// rather than taken for a rate limit and retried.
func TestForbiddenWithMalformedRetryAfter(t *testing.T) {
	for _, v := range []string{"soon", "-1", "10s"} {
		s := &rtScript{steps: []rtStep{{status: 403, header: http.Header{"Retry-After": {v}}, body: `{"message":"Forbidden"}`}}}
		resp, err := roundTrip(t, New(s, fastRetries), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := s.numCalls(); n != 1 {
			t.Errorf("Retry-After %q: the 403 reached the server %d times, want 1", v, n)
		}
	}
}

func TestResetWait(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 500e6, time.UTC)
	unix := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{unix(30 * time.Second), 29500 * time.Millisecond, true}, // to the second of the reset
		{unix(time.Hour), time.Hour - 500*time.Millisecond, true},
		{" " + unix(time.Minute) + " ", time.Minute - 500*time.Millisecond, true},
		{unix(0), 0, false}, // passed half a second ago
		{unix(-time.Hour), 0, false},
		{"100000000", 0, false}, // 1973
		{"30", 30 * time.Second, true},
		{"99999999", 99999999 * time.Second, true},               // seconds from now
		{"9999999999", maxRetryAfterSeconds * time.Second, true}, // Unix seconds in the year 2286: capped
		{"0", 0, false},
		{"99999999999999", maxRetryAfterSeconds * time.Second, true},
		{"99999999999999999999999999", maxRetryAfterSeconds * time.Second, true},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 1500 * time.Millisecond, true},
		{"2026-02-17T14:00:30Z", 29500 * time.Millisecond, true},
		{"Tue, 17 Feb 2026 14:01:00 GMT", 59500 * time.Millisecond, true},
		{strconv.FormatInt(now.Add(10*time.Second).UnixMilli(), 10), 10 * time.Second, true}, // Unix milliseconds, as the rate limiter reads them
		{strconv.FormatInt(now.Add(-time.Second).UnixMilli(), 10), 0, false},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		got, ok := resetWait(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("resetWait(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestServerWait(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	reset := strconv.FormatInt(now.Add(40*time.Second).Unix(), 10)
	tests := []struct {
		name   string
		status int
		h      http.Header
		cl     Class
		want   time.Duration
		ok     bool
	}{
		{"Retry-After", 429, http.Header{"Retry-After": {"7"}}, Throttled, 7 * time.Second, true},
		{"Retry-After wins over the reset", 403, http.Header{"Retry-After": {"7"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, Throttled, 7 * time.Second, true},
		{"reset of a throttled 403", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, Throttled, 40 * time.Second, true},
		{"reset of a 403 throttled with quota left: the rate limiter's", 403, http.Header{"X-Ratelimit-Remaining": {"9"}, "X-Ratelimit-Reset": {reset}}, Throttled, 0, false},
		{"reset of a permanent 403", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, Permanent, 0, false},
		{"reset of a 429: the rate limiter's", 429, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}, Throttled, 0, false},
		{"nothing", 503, http.Header{}, Transient, 0, false},
		{"malformed Retry-After", 503, http.Header{"Retry-After": {"soon"}}, Transient, 0, false},
	}
	for _, tc := range tests {
		got, ok := serverWait(tc.status, tc.h, tc.cl, clock)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: serverWait = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestHintPrecedence: a vendor's hint wins over everything else, both
// ways, and a custom Classifier receives the result as its default.
func TestHintPrecedence(t *testing.T) {
	yes := http.Header{"X-Should-Retry": {"true"}}
	no := http.Header{"Stripe-Should-Retry": {"false"}}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   Class
	}{
		{"true over the status", 400, yes, ``, Transient},
		{"false over the status", 503, no, ``, Permanent},
		{"true over a known code", 404, yes, `{"error":{"code":"not_found"}}`, Transient},
		{"false over a known code", 503, no, `{"error":{"code":"service_unavailable"}}`, Permanent},
		{"true over retryable false", 503, yes, `{"error":{"code":"x","retryable":false}}`, Transient},
		{"false over retryable true", 400, no, `{"error":{"code":"x","retryable":true}}`, Permanent},
		{"true keeps a 429 Throttled", 429, yes, `{"code":"slow_down"}`, Throttled},
		{"false over a 429", 429, no, `{"code":"slow_down"}`, Permanent},
		{"true over a plain 403", 403, yes, `{"message":"no"}`, Transient},
		{"false over a rate-limited 403", 403, http.Header{"Stripe-Should-Retry": {"false"}, "Retry-After": {"1"}}, ``, Permanent},
		{"true on a body that is not JSON", 501, http.Header{"X-Should-Retry": {"true"}, "Content-Type": {"text/html"}}, `<p>x</p>`, Transient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The default decision, through ParseError and the Transport,
			// with and without envelope parsing.
			if e := ParseError(newResponse(rtStep{status: tc.status, header: tc.header, body: tc.body})); e.Retryable != tc.want.Retryable() {
				t.Errorf("ParseError(…).Retryable = %v, want %v", e.Retryable, tc.want.Retryable())
			}
			for _, peek := range []int64{DefaultMaxPeek, 0} {
				var defs []Class
				cls := func(resp *http.Response, e *APIError, err error, def Class) Class {
					defs = append(defs, def)
					return def
				}
				s := &rtScript{steps: []rtStep{{status: tc.status, header: tc.header, body: tc.body}, {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithBackoff(0, 0), WithMaxPeek(peek), WithClassifier(cls), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				resp.Body.Close()
				want := tc.want // the hint decides, envelope or not
				if attempts[0].Class != want || defs[0] != want || s.numCalls() != map[bool]int{false: 1, true: 2}[want.Retryable()] {
					t.Errorf("WithMaxPeek(%d): class %v, Classifier's default %v, %d attempts; want %v", peek, attempts[0].Class, defs[0], s.numCalls(), want)
				}
			}
		})
	}

	// A custom Classifier still decides last.
	s := &rtScript{steps: []rtStep{{status: 503, header: no}, {status: 200}}}
	tr := New(s, WithBackoff(0, 0), WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
		if resp.StatusCode == 503 {
			return Transient
		}
		return def
	}))
	resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	resp.Body.Close()
	if s.numCalls() != 2 {
		t.Errorf("a Classifier returning Transient over Stripe-Should-Retry: false: %d attempts, want 2", s.numCalls())
	}

	// A hint never makes a success a failure, nor lifts the write rule.
	s = &rtScript{steps: []rtStep{{status: 200, header: yes}}}
	resp, _ = roundTrip(t, New(s), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	resp.Body.Close()
	if s.numCalls() != 1 {
		t.Errorf("200 with X-Should-Retry: true: %d attempts, want 1", s.numCalls())
	}
	s = &rtScript{steps: []rtStep{{status: 500, header: yes}, {status: 200}}}
	resp, _ = roundTrip(t, New(s, WithBackoff(0, 0), WithoutIdempotencyKeys()), newRequest(t, context.Background(), "POST", "http://api.test/", nil))
	resp.Body.Close()
	if s.numCalls() != 1 {
		t.Errorf("POST without a key, 500 with X-Should-Retry: true: %d attempts, want 1", s.numCalls())
	}
}

// TestRetryAfterMs: the millisecond headers OpenAI and Azure send are read
// before Retry-After, bounded as it is; a malformed one is ignored in
// favour of Retry-After.
func TestRetryAfterMs(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{"milliseconds", http.Header{"Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond, true},
		{"a fraction", http.Header{"Retry-After-Ms": {" 20.25 "}}, 20250 * time.Microsecond, true},
		{"nanoseconds, no finer", http.Header{"Retry-After-Ms": {"0.0000019"}}, time.Nanosecond, true},
		{"Azure's", http.Header{"X-Ms-Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{"before Retry-After", http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"2"}}, 1500 * time.Millisecond, true},
		{"zero", http.Header{"Retry-After-Ms": {"0"}}, 0, true},
		{"negative: Retry-After", http.Header{"Retry-After-Ms": {"-5"}, "Retry-After": {"2"}}, 2 * time.Second, true},
		{"exponent", http.Header{"Retry-After-Ms": {"1e9"}}, 0, false},
		{"a unit", http.Header{"Retry-After-Ms": {"100ms"}}, 0, false},
		{"NaN", http.Header{"Retry-After-Ms": {"NaN"}}, 0, false},
		{"no digits after the dot", http.Header{"Retry-After-Ms": {"5."}}, 0, false},
		{"empty", http.Header{"Retry-After-Ms": {""}}, 0, false},
		{"absurd: capped as Retry-After", http.Header{"Retry-After-Ms": {"99999999999999999999999"}}, maxRetryAfterSeconds * time.Second, true},
		{"past the cap", http.Header{"Retry-After-Ms": {"4294967296001"}}, maxRetryAfterSeconds * time.Second, true},
	}
	for _, tc := range tests {
		got, ok := serverWait(http.StatusTooManyRequests, tc.h, Throttled, clock)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: serverWait(%v) = %v, %v; want %v, %v", tc.name, tc.h, got, ok, tc.want, tc.ok)
		}
	}
	if !rateLimited403(http.Header{"Retry-After-Ms": {"100"}}) {
		t.Errorf("rateLimited403(Retry-After-Ms) = false, want true")
	}
}
