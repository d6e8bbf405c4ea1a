package resilient

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

func TestBackoffDelay(t *testing.T) {
	zero := func(int64) int64 { return 0 }
	top := func(n int64) int64 { return n - 1 }
	half := func(n int64) int64 { return n / 2 }
	const ms = time.Millisecond
	tests := []struct {
		base, maxDelay time.Duration
		n              int
		rnd            func(int64) int64
		want           time.Duration
	}{
		{500 * ms, 30 * time.Second, 0, zero, 500 * ms},
		{500 * ms, 30 * time.Second, 0, top, 1000*ms - 1},
		{500 * ms, 30 * time.Second, 1, half, 1500 * ms},
		{500 * ms, 30 * time.Second, 2, zero, 2 * time.Second},
		{500 * ms, 30 * time.Second, 5, zero, 16 * time.Second},
		{500 * ms, 30 * time.Second, 5, half, 24 * time.Second},
		{500 * ms, 30 * time.Second, 5, top, 30 * time.Second}, // 16s + 16s-1ns capped
		{500 * ms, 30 * time.Second, 6, zero, 30 * time.Second},
		{500 * ms, 30 * time.Second, 62, zero, 30 * time.Second},
		{500 * ms, 30 * time.Second, 63, top, 30 * time.Second},
		{500 * ms, 30 * time.Second, 64, zero, 30 * time.Second},
		{500 * ms, 30 * time.Second, 1000, top, 30 * time.Second},
		{500 * ms, 30 * time.Second, math.MaxInt, top, 30 * time.Second},
		{500 * ms, 30 * time.Second, -1, zero, 500 * ms},
		// The exponential term reaches the cap exactly: no jitter on top.
		{time.Second, 8 * time.Second, 3, top, 8 * time.Second},
		// No overflow when the cap is the largest Duration.
		{1, math.MaxInt64, 62, zero, 1 << 62},
		{1, math.MaxInt64, 62, top, math.MaxInt64},
		{1, math.MaxInt64, 61, top, 1<<62 - 1},
		{1, math.MaxInt64, 63, zero, math.MaxInt64},
		{1, math.MaxInt64, 1000, top, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, 0, top, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, 1, zero, math.MaxInt64},
		{math.MaxInt64 / 2, math.MaxInt64, 0, top, math.MaxInt64 - 2},
		{time.Hour, time.Second, 0, zero, time.Second}, // base above the cap
		{0, time.Second, 3, top, 0},                    // a zero base means no delay
		{time.Second, 0, 3, top, 0},                    // a zero cap too
	}
	for _, tc := range tests {
		if got := backoffDelay(tc.base, tc.maxDelay, tc.n, tc.rnd); got != tc.want {
			t.Errorf("backoffDelay(%v, %v, %d) = %v (%d), want %v (%d)", tc.base, tc.maxDelay, tc.n, got, got, tc.want, tc.want)
		}
	}
}

func TestBackoffDelayNeverExceedsCapOrUnderflows(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int64) int64 { return r.Int64N(n) }
	for range 100000 {
		base := time.Duration(r.Int64N(math.MaxInt64))
		maxDelay := time.Duration(r.Int64N(math.MaxInt64))
		if r.IntN(2) == 0 {
			base = time.Duration(r.Int64N(int64(time.Minute))) + 1
		}
		n := r.IntN(70)
		got := backoffDelay(base, maxDelay, n, rnd)
		if got < 0 || got > maxDelay {
			t.Fatalf("backoffDelay(%d, %d, %d) = %d, want within [0, %d]", base, maxDelay, n, got, maxDelay)
		}
		// Below the cap, the delay is at least base·2^n.
		if n < 63 && base <= maxDelay>>uint(n) && got < base<<uint(n) && got != maxDelay {
			t.Fatalf("backoffDelay(%d, %d, %d) = %d, below base·2^n", base, maxDelay, n, got)
		}
	}
}

func TestBackoffJitterIsUniform(t *testing.T) {
	const (
		base    = 100 * time.Millisecond
		n       = 3 // base·2^n = 800ms
		samples = 20000
		buckets = 10
	)
	r := rand.New(rand.NewPCG(42, 7))
	rnd := func(n int64) int64 { return r.Int64N(n) }
	lo, span := base<<n, base<<n
	var counts [buckets]int
	var sum float64
	for range samples {
		d := backoffDelay(base, time.Hour, n, rnd)
		if d < lo || d >= lo+span {
			t.Fatalf("delay %v outside [%v, %v)", d, lo, lo+span)
		}
		counts[int((d-lo)*buckets/span)]++
		sum += float64(d - lo)
	}
	// Chi-square with 9 degrees of freedom: 27.88 is the 0.1% critical value.
	var chi2 float64
	exp := float64(samples) / buckets
	for _, c := range counts {
		chi2 += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi2 > 27.88 {
		t.Errorf("jitter not uniform: buckets %v, chi² = %.1f", counts, chi2)
	}
	if mean := time.Duration(sum / samples); mean < span/2-span/50 || mean > span/2+span/50 {
		t.Errorf("mean jitter = %v, want about %v", mean, span/2)
	}

	// The default source (math/rand/v2) gives the same range.
	for range 1000 {
		if d := backoffDelay(base, time.Hour, n, nil); d < lo || d >= lo+span {
			t.Fatalf("default source: delay %v outside [%v, %v)", d, lo, lo+span)
		}
	}
}

func TestExpBackoff(t *testing.T) {
	var b backoff.BackOff = &expBackoff{base: time.Second, maxDelay: 5 * time.Second, rand: func(int64) int64 { return 0 }}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := b.NextBackOff(); got != w {
			t.Errorf("NextBackOff #%d = %v, want %v", i, got, w)
		}
	}
	b.Reset()
	if got := b.NextBackOff(); got != time.Second {
		t.Errorf("after Reset, NextBackOff = %v, want 1s", got)
	}
	// It never says Stop, even after many calls: the retry loop owns the budget.
	for range 200 {
		if b.NextBackOff() == backoff.Stop {
			t.Fatal("NextBackOff returned Stop")
		}
	}
}

func TestRetryAfterSpreadRange(t *testing.T) {
	top := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct{ d, want time.Duration }{
		{0, 0},
		{time.Second, 100 * time.Millisecond},
		{5 * time.Second, 500 * time.Millisecond},
		{10 * time.Second, time.Second},
		{time.Hour, time.Second},
		{3 * time.Nanosecond, 0},
	} {
		if got := retryAfterSpread(tc.d, top); got != tc.want {
			t.Errorf("retryAfterSpread(%v) at most = %v, want %v", tc.d, got, tc.want)
		}
		if got := retryAfterSpread(tc.d, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("retryAfterSpread(%v) at least = %v, want 0", tc.d, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 0, time.UTC)
	gmt := func(t time.Time, layout string) string {
		return strings.Replace(t.Format(layout), "UTC", "GMT", 1)
	}
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{"0", 0, true},
		{"007", 7 * time.Second, true},
		{"  42\t", 42 * time.Second, true},
		{"4294967296", maxRetryAfterSeconds * time.Second, true},
		{"4294967297", maxRetryAfterSeconds * time.Second, true},
		{"18446744073709551615", maxRetryAfterSeconds * time.Second, true},
		{"99999999999999999999999999999999", maxRetryAfterSeconds * time.Second, true},
		{gmt(now.Add(90*time.Second), http.TimeFormat), 90 * time.Second, true},
		{gmt(now.Add(90*time.Second), time.RFC850), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.ANSIC), 90 * time.Second, true},
		{"Tue, 17 Feb 2026 14:00:30 GMT", 30 * time.Second, true},
		{"Tuesday, 17-Feb-26 14:00:30 GMT", 30 * time.Second, true},
		{"Tue Feb 17 14:00:30 2026", 30 * time.Second, true},
		{gmt(now.Add(-time.Hour), http.TimeFormat), 0, true},
		{gmt(now, http.TimeFormat), 0, true},
		{"", 0, false},
		{"   ", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"10s", 0, false},
		{"5 6", 0, false},
		{"0x10", 0, false},
		{"99999999999999999999999x", 0, false},
		{"18446744073709551616.5", 0, false},
		{"18700000000000000000\xd5", 0, false},
		{"soon", 0, false},
		{"2026-02-17T14:00:30Z", 0, false},
		{"Tue, 17 Feb 2026 14:00:30 +0000", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// TestWithBackOff: a caller's backoff.BackOff gives the delays, one per
// call, and its Stop ends the retries.
func TestWithBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		made := 0
		newBO := func() backoff.BackOff {
			made++
			return backoff.WithMaxRetries(backoff.NewConstantBackOff(2*time.Second), 2)
		}
		s := &rtScript{steps: []rtStep{{status: 503}}}
		var stops []StopReason
		tr := New(s, WithBackOff(newBO), WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))
		for range 2 {
			resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
		}
		if s.numCalls() != 6 || made != 2 {
			t.Fatalf("%d attempts, %d BackOffs; want 3 attempts per call, a BackOff each", s.numCalls(), made)
		}
		if d := s.call(1).at.Sub(s.call(0).at); d != 2*time.Second {
			t.Errorf("delay %v, want the BackOff's 2s", d)
		}
		if stops[2] != StopBackOff {
			t.Errorf("StopReason %q, want %q", stops[2], StopBackOff)
		}
		// nil restores the default schedule.
		s = &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
		resp, _ := roundTrip(t, New(s, WithBackOff(newBO), WithBackOff(nil), WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 })),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		resp.Body.Close()
		if d := s.call(1).at.Sub(s.call(0).at); d != time.Second {
			t.Errorf("delay %v, want the default schedule's 1s", d)
		}
	})
}

// TestBackOffShortRetryAfterRaisedToBase: under a BackOff of the caller's,
// a Retry-After shorter than WithBackoff's base is raised to that base and
// spread within its cap, as WithBackOff's doc says: a BackOff of 10ms waits
// 550ms after "Retry-After: 0" with the spread at its widest, and a later
// WithBackoff's base and cap rule alike.
func TestBackOffShortRetryAfterRaisedToBase(t *testing.T) {
	newBO := func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) }
	widest := withRand(func(n int64) int64 { return n - 1 })
	for _, c := range []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"default base", []Option{WithBackOff(newBO)}, 550 * time.Millisecond},
		{"WithBackoff's base and cap", []Option{WithBackoff(time.Second, 1050*time.Millisecond), WithBackOff(newBO)}, 1050 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 503, header: http.Header{"Retry-After": {"0"}}}, {status: 200}}}
				resp, err := roundTrip(t, New(s, append(c.opts, widest, WithoutRateLimit(), WithoutBreaker())...),
					newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if d := s.call(1).at.Sub(s.call(0).at); d != c.want {
					t.Errorf("delay %v, want %v", d, c.want)
				}
			})
		})
	}
}

// negativeBackOff is a BackOff that returns a negative delay other than
// backoff.Stop, as one computed by subtraction may.
type negativeBackOff struct{}

func (negativeBackOff) NextBackOff() time.Duration { return -5 * time.Second }
func (negativeBackOff) Reset()                     {}

// TestBackOffNegativeDelayIsNoWait: a BackOff's negative delay (not
// backoff.Stop) is a retry at once, and is observed as a wait of 0, as
// Attempt.Delay's doc says ("0 if there is none"). It was observed and
// logged as a negative wait.
func TestBackOffNegativeDelayIsNoWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
		var delays []time.Duration
		tr := New(s, WithoutBreaker(), WithBackOff(func() backoff.BackOff { return negativeBackOff{} }),
			WithObserver(func(a Attempt) { delays = append(delays, a.Delay) }))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/x", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if s.numCalls() != 2 || len(delays) != 2 || delays[0] != 0 {
			t.Errorf("%d attempts, observed delays %v; want 2, [0 0]", s.numCalls(), delays)
		}
	})
}
