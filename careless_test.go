package resilient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// slowOK returns a RoundTripper that answers 200 after d, or fails with
// the request's context error if that ends first, counting its calls in
// hits.
func slowOK(d time.Duration, hits *atomic.Int32) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hits.Add(1)
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
}

// TestAttemptTimeoutBelowFloorPanics: WithAttemptTimeout(5), meant as
// five seconds, is 5ns, a bound no attempt can meet: a Transport made
// with it retried every call's timeouts, 6 attempts over about 25 s of
// backoff each, spending the host's retry budget, where a plain
// http.Client with Timeout 5ns fails at once. New panics on an attempt
// timeout below 1ms, naming the option; 1ms and 0 (none) are accepted.
func TestAttemptTimeoutBelowFloorPanics(t *testing.T) {
	for _, d := range []time.Duration{1, 5, 999 * time.Microsecond} {
		p := mustPanic(t, fmt.Sprintf("New(WithAttemptTimeout(%d)) did not panic: an attempt timeout below 1ms is a units mistake", d), func() {
			New(nil, WithAttemptTimeout(d))
		})
		if s, _ := p.(string); p != nil && s != fmt.Sprintf("resilient: WithAttemptTimeout: %v is below the floor of 1ms (a time.Duration counts nanoseconds: 5 is 5ns, 5*time.Second five seconds)", d) {
			t.Errorf("New(WithAttemptTimeout(%d)) panicked with %q", d, s)
		}
	}
	New(nil, WithAttemptTimeout(0))
	New(nil, WithAttemptTimeout(time.Millisecond))
}

// TestCallAttemptTimeoutBelowFloorClamped: per call (WithCallOptions), a
// computed attempt timeout below 1ms does not panic, where it worked
// before; it counts as 1ms. A server that answers in 500µs used to see 6
// attempts over about 25 s for one call, each cut at 5ns; now it sees one,
// answered.
func TestCallAttemptTimeoutBelowFloorClamped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		tr := New(slowOK(500*time.Microsecond, &hits))
		ctx := WithCallOptions(context.Background(), WithAttemptTimeout(5))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("RoundTrip with a per-call WithAttemptTimeout(5): %v; want the server's 200", err)
		}
		resp.Body.Close()
		if n, d := hits.Load(), time.Since(start); n != 1 || d > time.Millisecond {
			t.Errorf("server hit %d times over %v; want once, within 1ms", n, d)
		}
	})
}

// TestBreakerDurationsBelowFloorPanic: BreakerSettings{Window: 30} or
// {OpenTimeout: 10}, meant as seconds, are nanoseconds: a window that
// forgets each outcome before the next one comes never trips, and a
// breaker open for 10ns refuses nothing, so the breaker the caller set up
// silently does nothing: a host failing every attempt, called every
// 10ms, got all 100 calls' attempts (with Window: 30ns) where the default
// window stops them after 20 failures. WithBreaker panics on a Window,
// OpenTimeout or ProbeTimeout below 1ms, naming the field.
func TestBreakerDurationsBelowFloorPanic(t *testing.T) {
	hitsWith := func(s BreakerSettings) int32 {
		var hits int32
		synctest.Test(t, func(t *testing.T) {
			tr := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				hits++
				return &http.Response{StatusCode: 500, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			}), WithMaxRetries(0), WithBreaker(s))
			for range 100 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
		return hits
	}
	if n := hitsWith(BreakerSettings{Window: time.Second}); n != 20 {
		t.Fatalf("a 1s window: %d calls reached the failing host, want 20", n)
	}
	for _, tc := range []struct {
		field string
		s     BreakerSettings
	}{
		{"Window", BreakerSettings{Window: 30}},
		{"OpenTimeout", BreakerSettings{OpenTimeout: 10}},
		{"ProbeTimeout", BreakerSettings{ProbeTimeout: 999 * time.Microsecond}},
	} {
		p := mustPanic(t, fmt.Sprintf("WithBreaker(%+v) did not panic", tc.s), func() { WithBreaker(tc.s) })
		if s, _ := p.(string); p != nil && !strings.HasPrefix(s, "resilient: WithBreaker "+tc.field+": ") {
			t.Errorf("WithBreaker(%+v) panicked with %q, want the field named", tc.s, s)
		}
	}
	WithBreaker(BreakerSettings{Window: time.Millisecond, OpenTimeout: time.Millisecond, ProbeTimeout: time.Millisecond})
}

// TestHedgeDelayBelowFloor: Hedging{Delay: 1}, meant as a second, is
// 1ns: a copy of nearly every request is sent at once, as far as the
// host's hedge allowance (10, then one call in 20) and the retry budget
// that pays for copies allow: 20 calls to a server answering in 500µs
// were 30 requests. New panics on a fixed Delay below 1ms but not zero;
// per call (WithCallOptions), where it may be computed, it counts as 1ms,
// and those 20 calls are 20 requests.
func TestHedgeDelayBelowFloor(t *testing.T) {
	p := mustPanic(t, "New(WithHedging(Hedging{Delay: 1})) did not panic: a hedge delay below 1ms is a units mistake", func() {
		New(nil, WithHedging(Hedging{Delay: 1}))
	})
	if s, _ := p.(string); p != nil && !strings.HasPrefix(s, "resilient: WithHedging Delay: 1ns is below the floor of 1ms") {
		t.Errorf("New(WithHedging(Hedging{Delay: 1})) panicked with %q", s)
	}
	New(nil, WithHedging(Hedging{}))                        // adaptive
	New(nil, WithHedging(Hedging{Delay: time.Millisecond})) // the floor
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		tr := New(slowOK(500*time.Microsecond, &hits))
		ctx := WithCallOptions(context.Background(), WithHedging(Hedging{Delay: 1}))
		for range 20 {
			resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if n := hits.Load(); n != 20 {
			t.Errorf("20 calls with a per-call Hedging{Delay: 1} sent %d requests, want 20: a copy after 1ms at the earliest", n)
		}
	})
}

// TestMaxElapsedBelowFloorPanics: WithMaxElapsed(30), meant as 30
// seconds, is 30ns: every call of the Transport fails at its first
// attempt. New panics on a budget below 1ms but not zero; per call it
// applies as given (a call given no time fails at once, sending nothing:
// the caller's bound, as its context's deadline; until 2026-12-07 it sent
// one attempt, cut at once).
func TestMaxElapsedBelowFloorPanics(t *testing.T) {
	p := mustPanic(t, "New(WithMaxElapsed(30)) did not panic: a budget below 1ms is a units mistake", func() {
		New(nil, WithMaxElapsed(30))
	})
	if s, _ := p.(string); p != nil && !strings.HasPrefix(s, "resilient: WithMaxElapsed: 30ns is below the floor of 1ms") {
		t.Errorf("New(WithMaxElapsed(30)) panicked with %q", s)
	}
	New(nil, WithMaxElapsed(0))
	New(nil, WithMaxElapsed(time.Millisecond))
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		tr := New(slowOK(500*time.Microsecond, &hits))
		ctx := WithCallOptions(context.Background(), WithMaxElapsed(30))
		if _, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil)); err == nil || hits.Load() != 0 {
			t.Errorf("a call with a per-call budget of 30ns: err %v after %d requests; want an error after none", err, hits.Load())
		}
	})
}
