package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// latencyRT answers 200 after the latency latency(i) gives the i-th
// request (from 0), or when the request's context ends, and records the
// requests and the bodies it closed.
type latencyRT struct {
	latency func(i int) time.Duration
	status  int
	header  func(i int) http.Header // the i-th answer's header; nil for none

	mu     sync.Mutex
	n      int
	keys   []string
	causes []error
	closed atomic.Int32
}

// slowFirst returns a latencyRT whose first request answers after an hour
// (the slow tail, which a copy overtakes) and the others after 10ms.
func slowFirst() *latencyRT {
	return &latencyRT{latency: func(i int) time.Duration {
		if i == 0 {
			return time.Hour
		}
		return 10 * time.Millisecond
	}}
}

func (l *latencyRT) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	i := l.n
	l.n++
	l.keys = append(l.keys, wireHeader(req.Header, "Idempotency-Key"))
	l.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	timer := time.NewTimer(l.latency(i))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-req.Context().Done():
		l.mu.Lock()
		l.causes = append(l.causes, context.Cause(req.Context()))
		l.mu.Unlock()
		return nil, context.Cause(req.Context())
	}
	status := l.status
	if status == 0 {
		status = 200
	}
	var h http.Header
	if l.header != nil {
		h = l.header(i)
	}
	return &http.Response{StatusCode: status, Header: h, Body: &closeCounter{n: &l.closed}, Request: req}, nil
}

func (l *latencyRT) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

type closeCounter struct {
	n    *atomic.Int32
	once sync.Once
}

func (c *closeCounter) Read([]byte) (int, error) { return 0, io.EOF }
func (c *closeCounter) Close() error {
	c.once.Do(func() { c.n.Add(1) })
	return nil
}

func TestHedgingFixedDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := slowFirst()
		var r Report
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("RoundTrip = %v, %v", resp, err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != 60*time.Millisecond {
			t.Errorf("answered after %v, want 60ms (the copy's)", d)
		}
		synctest.Wait()
		if rt.count() != 2 || r.Hedges != 1 || len(rt.causes) != 1 || rt.causes[0] != errHedgeLost {
			t.Errorf("%d requests, Report.Hedges %d, canceled %v; want 2, 1 and the slow one canceled", rt.count(), r.Hedges, rt.causes)
		}
	})
}

func TestHedgingNotNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 10 * time.Millisecond }}
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}))
		for range 10 {
			resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
		}
		time.Sleep(time.Second)
		if rt.count() != 10 {
			t.Errorf("%d requests for 10 fast calls, want no copy", rt.count())
		}
	})
}

// TestHedgingOnlySafeRequests: a write is hedged only with a key its host
// honors, and every copy carries the same key.
func TestHedgingOnlySafeRequests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		opts   []Option
		want   int
	}{
		{"GET", "GET", nil, 2},
		{"HEAD", "HEAD", nil, 2},
		{"OPTIONS", "OPTIONS", nil, 2},
		{"PATCH to a host that honors keys", "PATCH", []Option{WithKeyHonoringHosts("api.test")}, 2},
		{"POST to a host not known to honor keys", "POST", nil, 1},
		{"POST to a host that honors keys", "POST", []Option{WithKeyHonoringHosts("api.test")}, 2},
		{"POST without a key to a host that honors keys", "POST", []Option{WithKeyHonoringHosts("api.test"), WithoutIdempotencyKeys()}, 1},
		{"PUT", "PUT", nil, 1},
		{"DELETE", "DELETE", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &latencyRT{latency: func(i int) time.Duration { return time.Duration(100-90*i) * time.Millisecond }}
				tr := New(rt, append([]Option{WithHedging(Hedging{Delay: 20 * time.Millisecond})}, tc.opts...)...)
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), tc.method, "http://api.test/", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				if rt.count() != tc.want {
					t.Fatalf("%d requests, want %d", rt.count(), tc.want)
				}
				if tc.want == 2 && rt.keys[0] != rt.keys[1] {
					t.Errorf("keys %q, want the same on both copies", rt.keys)
				}
			})
		})
	}
}

// TestHedgingRespectsTheHost: copies are bounded by the host's hedge
// allowance and its retry budget.
func TestHedgingRespectsTheHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithRetryBudget(RetryBudget{Burst: 1}))
		for range 3 {
			resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
		}
		synctest.Wait()
		// The budget holds one retry: one copy, then it is spent.
		if rt.count() != 4 {
			t.Errorf("%d requests for 3 slow calls, want 4 (one copy, then the budget is spent)", rt.count())
		}
	})
}

// TestHedgingAdaptive: after 20 answers of 5ms, a slow answer is hedged at
// the host's 0.95 quantile, and a uniformly slow host gets at most one copy
// in twenty calls.
func TestHedgingAdaptive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := false
		rt := &latencyRT{latency: func(i int) time.Duration {
			if slow || i == 50 {
				return 500 * time.Millisecond
			}
			return 5 * time.Millisecond
		}}
		tr := New(rt, WithHedging(Hedging{}))
		var r Report
		ctx := WithReport(context.Background(), &r)
		hedged := 0
		for range 50 {
			resp, _ := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
			resp.Body.Close()
			hedged += r.Hedges
		}
		if hedged != 0 || rt.count() != 50 {
			t.Fatalf("%d copies for 50 fast calls, want none", hedged)
		}
		start := time.Now()
		resp, _ := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		resp.Body.Close()
		if d := time.Since(start); r.Hedges != 1 || d > 20*time.Millisecond {
			t.Errorf("slow call: %d copies, answered after %v; want one copy and an answer near 10ms", r.Hedges, d)
		}
		slow = true
		before := rt.count()
		hedged = 0
		for range 200 {
			resp, _ := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
			resp.Body.Close()
			hedged += r.Hedges
		}
		if extra := rt.count() - before - 200; extra > 200/20+1 || extra != hedged {
			t.Errorf("uniformly slow host: %d copies for 200 calls, want at most %d", extra, 200/20+1)
		}
	})
}

// TestHedgingLoserBodyDoesNotHoldWinner: a copy that lost with an error
// whose body stalls (a 503 that answered before the winner, retryable,
// its HTML body never ending) does not hold the winner's answer: the call
// returns as the winner answers, not after a drain of the loser's body,
// and the loser's body is closed.
func TestHedgingLoserBodyDoesNotHoldWinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var loser *stallBody
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				time.Sleep(150 * time.Millisecond) // after the copy was sent, before it answers
				loser = newStallBody(req.Context(), "<html>")
				return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}},
					Body: loser, ContentLength: -1, Request: req}, nil
			}
			time.Sleep(100 * time.Millisecond)
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		start := time.Now()
		resp, err := roundTrip(t, New(rt, WithHedging(Hedging{Delay: 100 * time.Millisecond})),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("RoundTrip = %v, %v; want the copy's 200", resp, err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("returned after %v, want 200ms: when the copy answered", d)
		}
		select {
		case <-loser.closed:
		default:
			t.Error("the loser's body was not closed")
		}
	})
}

// TestHedgingStalledBodyDrainIsBounded: when every copy of a hedged
// attempt failed and the attempt's own 503 decides it, that response is
// drained before the retry for maxReadWait at most, even when its body's
// Close waits for its stalled Read (see lockedBody): the drain is cut
// through the copy's context, not left to the attempt's deadline.
func TestHedgingStalledBodyDrainIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch calls.Add(1) {
			case 1: // the attempt, which answers after its copy failed
				time.Sleep(150 * time.Millisecond)
				return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}},
					Body: newLockedBody(req.Context(), "<html>"), ContentLength: -1, Request: req}, nil
			case 2: // the copy
				return nil, errReset
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		start := time.Now()
		resp, err := roundTrip(t, New(rt, WithBackoff(0, 0), WithHedging(Hedging{Delay: 100 * time.Millisecond})),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("RoundTrip = %v, %v; want the retry's 200", resp, err)
		}
		resp.Body.Close()
		if d, want := time.Since(start), 150*time.Millisecond+maxReadWait; d != want {
			t.Errorf("returned after %v, want %v: the drain cut after maxReadWait", d, want)
		}
	})
}

// TestHedgingClosesLosers: a copy that answers after the winner is
// closed.
func TestHedgingClosesLosers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var release = make(chan struct{})
		var calls atomic.Int32
		var closed atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				<-release // answers, but late: after the copy won
			} else {
				close(release)
			}
			return &http.Response{StatusCode: 200, Body: &closeCounter{n: &closed}, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if closed.Load() != 1 {
			t.Errorf("%d bodies closed before the caller closed the winner's, want the loser's", closed.Load())
		}
		resp.Body.Close()
		if closed.Load() != 2 {
			t.Errorf("%d bodies closed in all, want 2", closed.Load())
		}
	})
}

func TestWithHedgingPanics(t *testing.T) {
	for _, h := range []Hedging{{Delay: -1}, {MaxHedges: -1}, {Quantile: 1}, {Quantile: -0.5}} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("WithHedging(%+v) did not panic", h)
				}
			}()
			WithHedging(h)
		}()
	}
}

func TestLatencyHist(t *testing.T) {
	var h latencyHist
	if _, ok := h.quantile(0.95); ok {
		t.Fatal("an empty histogram has a quantile")
	}
	for i := range 100 {
		d := 5 * time.Millisecond
		if i%50 == 0 {
			d = time.Second
		}
		h.record(d)
	}
	q, ok := h.quantile(0.95)
	if !ok || q < 5*time.Millisecond || q > 7*time.Millisecond {
		t.Errorf("quantile(0.95) = %v, %v; want the bucket of 5ms", q, ok)
	}
	if q, _ := h.quantile(0.999); q < time.Second {
		t.Errorf("quantile(0.999) = %v, want the slow bucket", q)
	}
	for range latencyDecay * 4 {
		h.record(50 * time.Millisecond)
	}
	if q, _ := h.quantile(0.5); q < 50*time.Millisecond || q > 60*time.Millisecond {
		t.Errorf("after a slowdown quantile(0.5) = %v, want the new latency", q)
	}
}

// TestHedgingNotWhileHalfOpen: the probe of a half-open breaker gets no
// copy, however slow it is; the same slow call, once the breaker closed,
// gets one (hedging is on: with WithMaxRetries(0), which turns it off,
// this test passed whatever the half-open rule).
func TestHedgingNotWhileHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
			}
			time.Sleep(100 * time.Millisecond) // the slow probe
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second}),
			WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		resp.Body.Close() // the 500 opens the breaker
		time.Sleep(2 * time.Second)
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("probe: %v, %v", resp, err)
		}
		resp.Body.Close()
		synctest.Wait()
		if n := calls.Load(); n != 2 {
			t.Errorf("%d requests, want 2: no copy of a half-open breaker's probe", n)
		}
		resp, _ = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		resp.Body.Close()
		time.Sleep(time.Second) // the losing copy's answer, which rt does not cut short
		if n := calls.Load(); n != 4 {
			t.Errorf("%d requests after a slow call with the breaker closed, want 4: the call and its copy", n)
		}
	})
}

// TestHedgingAllowanceBurst: a host's hedge allowance holds hedgeBurst
// copies, so that a cluster of slow answers is hedged whole, and then
// refills by one copy in twenty calls.
func TestHedgingAllowanceBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
		// A large retry budget, so that only the allowance bounds the copies.
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithRetryBudget(RetryBudget{Burst: 1000}))
		var r Report
		ctx := WithReport(context.Background(), &r)
		copies := 0
		for i := range 100 {
			resp, _ := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
			resp.Body.Close()
			copies += r.Hedges
			// Ten slow calls in a row each get a copy; the eleventh finds
			// the allowance spent.
			if i < 10 && r.Hedges != 1 {
				t.Fatalf("slow call %d of a cluster: %d copies, want 1 while the allowance holds", i+1, r.Hedges)
			}
			if i == 10 && r.Hedges != 0 {
				t.Fatalf("call %d: a copy beyond the allowance's %d", i+1, hedgeBurst)
			}
		}
		if max := 100/20 + hedgeBurst; copies > max {
			t.Errorf("%d copies for 100 slow calls, want at most %d", copies, max)
		}
	})
}

// TestHedgingAllowanceRefillsPerCall: a host's hedge allowance refills by
// one copy in twenty of its calls, however many attempts each makes: a
// call retried twice refilled it thrice, so that the calls of a host
// failing in part earned copies by their retries, when it is least able
// to bear them.
func TestHedgingAllowanceRefillsPerCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
		tr := New(s, fastRetries, WithoutBreaker(), WithHedging(Hedging{Delay: time.Second}))
		req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
		hb := tr.budgets.get(req)
		hb.hedgeTokens.Store(0) // spent: a deposit shows
		resp, _ := roundTrip(t, tr, req)
		resp.Body.Close()
		if n := s.numCalls(); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
		if got, want := hb.hedgeTokens.Load(), int64(hedgeShare*budgetUnit); got != want {
			t.Errorf("hedge allowance after a call of 3 attempts = %v, want %v", float64(got)/budgetUnit, float64(want)/budgetUnit)
		}
	})
}

// keyLockRT answers a keyed write 201 after 100ms, and a write whose key
// another request holds at that moment 409 at once, as a server following
// the IETF Idempotency-Key draft does.
type keyLockRT struct {
	mu       sync.Mutex
	inFlight map[string]bool
	n        int
}

func (k *keyLockRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	key := wireHeader(req.Header, "Idempotency-Key")
	k.mu.Lock()
	k.n++
	if k.inFlight[key] {
		k.mu.Unlock()
		return &http.Response{StatusCode: http.StatusConflict, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":"conflict","message":"a request with this key is in progress"}}`))}, nil
	}
	k.inFlight[key] = true
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.inFlight, key)
		k.mu.Unlock()
	}()
	timer := time.NewTimer(100 * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
	case <-req.Context().Done():
		return nil, context.Cause(req.Context())
	}
}

// TestHedgingKeyedWriteConflict: the copy of a keyed write that the server
// refuses with a 409, because the first copy holds the key, does not win:
// the call gets the first copy's answer.
func TestHedgingKeyedWriteConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &keyLockRT{inFlight: make(map[string]bool)}
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		var r Report
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || r.Hedges != 1 || rt.n != 2 {
			t.Errorf("status %d, %d copies, %d requests; want 201, 1 and 2", resp.StatusCode, r.Hedges, rt.n)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("answered after %v, want 100ms (the first copy's)", d)
		}
	})
}

// TestHedgingKeylessRequest: a request that BreakerSettings.Key exempts
// from a breaker keeps its host's retry budget, and is hedged as any other
// (this used to panic, when such a request had no budget).
func TestHedgingKeylessRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
		tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}),
			WithBreaker(BreakerSettings{Key: func(*http.Request) string { return "" }}))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if rt.count() != 2 {
			t.Errorf("%d requests, want 2: the request and its copy", rt.count())
		}
	})
}

// TestHedgingMaxHedgesUnbounded: MaxHedges of math.MaxInt, "no limit but
// the host's hedge allowance", as WithMaxRetries(math.MaxInt) is no limit
// but the budget, hedges as usual: the run's result channel is not sized
// by it (it overflowed, and the first hedged call panicked in makechan; a
// million made each hedged attempt allocate 8 MB).
func TestHedgingMaxHedgesUnbounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := slowFirst()
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond, MaxHedges: math.MaxInt}))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("RoundTrip = %v, %v", resp, err)
		}
		resp.Body.Close()
		synctest.Wait()
		if n := rt.count(); n != 2 {
			t.Errorf("%d requests, want 2 (the slow one and its copy)", n)
		}
	})
}

// TestHedgedBodyOutlivesDeadline: the body of a hedged attempt's response
// is the caller's once handed over, as any other: neither the attempt
// timeout nor the call's budget, whose timer ran while the attempt waited
// for its answer, cuts it later (the winner's body is wrapped, and the
// hand-over did not find the deadline under the wrapper).
func TestHedgedBodyOutlivesDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"attempt timeout", WithAttemptTimeout(time.Second)},
		{"call budget", WithMaxElapsed(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: 200, Body: newStallBody(req.Context(), "ok"), ContentLength: -1, Request: req}, nil
				})
				tr := New(rt, tc.opt, WithHedging(Hedging{Delay: time.Minute}))
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				time.Sleep(time.Minute) // long past the deadline: the body is the caller's
				buf := make([]byte, 2)
				if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "ok" {
					t.Errorf("body %q, %v; want it whole", buf, err)
				}
				if err := context.Cause(resp.Request.Context()); err != nil {
					t.Errorf("the returned response's context ended: %v", err)
				}
			})
		})
	}
}

// TestHedgingAttemptPanics: when the base RoundTripper panics on the
// caller's goroutine, in a hedged attempt's own request, the panic reaches
// the caller as without hedging, and the attempt's copies end with it: none
// is sent after the panic, and the answer of one that already came is
// closed (it was sent after the call ended, and its response never
// closed).
func TestHedgingAttemptPanics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		panicAt time.Duration // when the attempt's own request panics
		want    int32         // requests sent
	}{
		{"before the copy", 10 * time.Millisecond, 1},
		{"after the copy answered", 100 * time.Millisecond, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls, closed atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						time.Sleep(tc.panicAt)
						panic("base exploded")
					}
					time.Sleep(10 * time.Millisecond)
					return &http.Response{StatusCode: 200, Body: &closeCounter{n: &closed}, Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}))
				mustPanic(t, "the panic did not reach the caller", func() {
					tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				})
				time.Sleep(time.Second)
				synctest.Wait()
				if n := calls.Load(); n != tc.want {
					t.Errorf("%d requests, want %d: a copy sent after the call ended", n, tc.want)
				}
				if n := closed.Load(); n != tc.want-1 {
					t.Errorf("%d of the copies' %d responses closed", n, tc.want-1)
				}
			})
		})
	}
}

// TestHedgingCopyPanics: a panic of the base RoundTripper in a hedged copy,
// which runs on a goroutine of its own, reaches the caller as a panic in
// the attempt itself would, instead of crashing the process; a copy's panic
// after the call had its answer is dropped with the copy. (The test runs
// in a child process: a panic on the copy's goroutine ends it.)
func TestHedgingCopyPanics(t *testing.T) {
	if os.Getenv("RESILIENT_HEDGE_PANIC_CHILD") == "1" {
		for _, late := range []bool{false, true} {
			synctest.Test(t, func(t *testing.T) {
				var calls, closed atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						if late {
							time.Sleep(20 * time.Millisecond) // answers before the copy panics
						} else {
							<-req.Context().Done()
							return nil, context.Cause(req.Context())
						}
						return &http.Response{StatusCode: 200, Body: &closeCounter{n: &closed}, Request: req}, nil
					}
					time.Sleep(20 * time.Millisecond)
					panic("base exploded")
				})
				tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				var got any
				func() {
					defer func() { got = recover() }()
					resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					if err == nil {
						resp.Body.Close()
					}
				}()
				time.Sleep(time.Second) // the late copy panics meanwhile
				synctest.Wait()
				if late && got != nil {
					t.Errorf("late copy's panic: %v reached the caller, which had its answer", got)
				}
				if !late && got != "base exploded" {
					t.Errorf("recovered %v, want the copy's panic", got)
				}
				if !late && closed.Load() != 0 || late && closed.Load() != 1 {
					t.Errorf("%d bodies closed", closed.Load())
				}
			})
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHedgingCopyPanics$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RESILIENT_HEDGE_PANIC_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestHedgingCopyPanics") {
		t.Errorf("child: %v\n%s", err, out)
	}
}

// TestHedgingCopyCallbackPanics: a panic of the caller's code that a
// hedged copy runs on its own goroutine before or after the layers below
// (the caller's GetBody, which makes the copy's body; a Classifier, which
// classifies a copy refused above the base) reaches the caller as a panic
// of the base in a copy does, or is dropped with the copy once the call
// had its answer, instead of ending the process; the copy, never sent,
// gives back what it took. (The test runs in a child process: a panic on
// the copy's goroutine ended it.)
func TestHedgingCopyCallbackPanics(t *testing.T) {
	if os.Getenv("RESILIENT_HEDGE_CALLBACK_PANIC_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHedgingCopyCallbackPanics$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "RESILIENT_HEDGE_CALLBACK_PANIC_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestHedgingCopyCallbackPanics") {
			t.Errorf("child: %v\n%s", err, out)
		}
		return
	}
	for _, tc := range []struct {
		name    string
		getBody func() (io.ReadCloser, error)
		opts    []Option
		want    any // what the caller recovers; nil: its answer
	}{
		{name: "GetBody", getBody: func() (io.ReadCloser, error) { panic("GetBody exploded") }, want: "GetBody exploded"},
		{name: "GetBody after the answer", getBody: func() (io.ReadCloser, error) {
			time.Sleep(time.Second) // the attempt answers meanwhile
			panic("GetBody exploded")
		}},
		// The first call takes the limiter's token; the second waits
		// 1s for the next, and its copy, whose token would come after
		// the call's budget, is refused at once: the Classifier, which
		// does not expect a refusal, classifies it.
		{name: "Classifier of a copy refused by the rate limiter", opts: []Option{
			WithRateLimit(1, 1), WithMaxElapsed(1500 * time.Millisecond),
			WithClassifier(func(resp *http.Response, _ *APIError, err error, def Class) Class {
				if errors.Is(err, ErrRateLimited) {
					panic("classifier exploded")
				}
				return def
			}),
		}, want: "classifier exploded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
				tr := New(rt, append([]Option{WithHedging(Hedging{Delay: 20 * time.Millisecond})}, tc.opts...)...)
				if tc.getBody == nil {
					resp, err := roundTrip(t, tr, newRequest(t, WithCallOptions(context.Background(), WithoutHedging()), "GET", "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				}
				var body io.Reader
				if tc.getBody != nil {
					body = strings.NewReader("query")
				}
				req := newRequest(t, context.Background(), "GET", "http://api.test/", body)
				if body != nil {
					req.Body = streamBody("query") // not in memory: the copy's body is GetBody's
				}
				req.GetBody = tc.getBody
				var got any
				func() {
					defer func() { got = recover() }()
					resp, err := roundTrip(t, tr, req)
					if err != nil {
						t.Errorf("RoundTrip: %v", err)
						return
					}
					resp.Body.Close()
				}()
				time.Sleep(time.Minute) // a late panic comes meanwhile
				synctest.Wait()
				if got != tc.want {
					t.Errorf("the caller recovered %v, want %v", got, tc.want)
				}
				// No copy was sent: it gave back what it took.
				hb := tr.budgets.get(req)
				if got, want := hb.hedgeTokens.Load(), int64(hedgeBurst*budgetUnit); got != want {
					t.Errorf("hedge allowance %v, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
				}
				if got, want := hb.tokens.Load(), tr.budgets.burst; got != want {
					t.Errorf("retry budget %v, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
				}
			})
		})
	}
}

// TestHedgingKeepsThePace: a hedged copy that would wait for a token of
// the rate limiter's pace is not sent, and takes no token: the callers of
// a paced host are served at its pace, as without hedging. (A copy waited
// for a token of its own, canceled once its attempt answered: a token
// reserved behind other callers' cannot be given back, so each such copy
// threw one away, and three callers making fifteen calls at one a second
// were served in 27s instead of 14s, no copy ever sent.)
func TestHedgingKeepsThePace(t *testing.T) {
	var took [2]time.Duration
	for i, hedging := range []Option{WithoutHedging(), WithHedging(Hedging{Delay: 20 * time.Millisecond})} {
		synctest.Test(t, func(t *testing.T) {
			rt := &latencyRT{latency: func(int) time.Duration { return 10 * time.Millisecond }}
			tr := New(rt, WithRateLimit(1, 1), hedging)
			start := time.Now()
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					for range 5 {
						resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			took[i] = time.Since(start)
			synctest.Wait()
			if n := rt.count(); n != 15 {
				t.Errorf("%d requests for 15 calls, want 15: no copy", n)
			}
		})
	}
	if took[1] != took[0] {
		t.Errorf("15 calls at one a second took %v with hedging, %v without", took[1], took[0])
	}

	// A copy that finds a token at once is sent, and overtakes the slow
	// tail as without a pace.
	synctest.Test(t, func(t *testing.T) {
		rt := slowFirst()
		tr := New(rt, WithRateLimit(100, 10), WithHedging(Hedging{Delay: 20 * time.Millisecond}))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); rt.count() != 2 || d != 30*time.Millisecond {
			t.Errorf("with tokens to spare: %d requests, answered after %v; want the copy sent at 20ms, answered at 30ms", rt.count(), d)
		}
	})
}

// TestHedgingAllFailed: when every copy of an attempt fails, the attempt's
// result is what it would have been without hedging, not whichever copy
// ended last. The attempt's own answer, a 500 the call returns once its
// retries are spent, is not replaced by its copy's later connection reset
// (the caller got an error, the 500 and its body thrown away, although an
// attempt produced a response); and the 409 a keyed write's copy gets
// because the attempt itself holds the key says nothing of the write:
// when the attempt then fails ambiguously, the call retries, and gets the
// write's stored answer (it got the 409, for a write that was done).
// TestHedgingFailureOutwaitsNoHungCopy: the attempt itself fails while a
// copy hedging sent hangs (the slow tail hedging is for). The copy gets one
// hedging delay more to answer; then it is canceled and the attempt fails
// as it would have without hedging: a retry follows at once (its backoff
// aside), and the last attempt's 500 is returned, rather than either
// waiting for the copy until the call's budget (5 minutes) is spent.
func TestHedgingFailureOutwaitsNoHungCopy(t *testing.T) {
	type step struct {
		status int
		d      time.Duration // 0: hang until canceled
	}
	for _, tc := range []struct {
		name  string
		steps []step // by request, copies included
		want  int    // the call's status
		took  time.Duration
	}{
		// Attempt 1: a 500 at 100ms, its copy sent at 50ms hangs; the
		// copy is given up at 150ms, and the retry's 200 comes 10ms
		// after its 1ms backoff.
		{"then a retry", []step{{500, 100 * time.Millisecond}, {}, {200, 10 * time.Millisecond}}, 200, 161 * time.Millisecond},
		// Attempt 1: a quick 500, no copy. The last attempt (2), from
		// 11ms: a 500 at 111ms, its copy sent at 61ms hangs; the 500 is
		// returned at 161ms.
		{"the last attempt", []step{{500, 10 * time.Millisecond}, {500, 100 * time.Millisecond}, {}}, 500, 161 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				var canceled atomic.Bool
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					st := tc.steps[calls.Add(1)-1]
					if st.d == 0 {
						<-req.Context().Done()
						canceled.Store(true)
						return nil, context.Cause(req.Context())
					}
					time.Sleep(st.d)
					return &http.Response{StatusCode: st.status, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithMaxRetries(1), WithBackoff(time.Millisecond, time.Millisecond),
					WithHedging(Hedging{Delay: 50 * time.Millisecond}))
				start := time.Now()
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil || resp.StatusCode != tc.want || time.Since(start) != tc.took || calls.Load() != 3 {
					t.Fatalf("%v, %v after %v and %d requests; want %d after %v and 3", resp, err, time.Since(start), calls.Load(), tc.want, tc.took)
				}
				resp.Body.Close()
				synctest.Wait()
				if !canceled.Load() {
					t.Error("the hung copy was not canceled")
				}
			})
		})
	}
}

// TestHedgingCopyOwnsItsRequest: the RoundTripper contract lets a caller
// reuse its request once the response's body is closed (a poll sets the
// next If-None-Match on it). A copy that lost runs on after RoundTrip
// returned, until its base gives up: it reads its own clone of the
// request, not the caller's (run with -race). A copy that wins gives the
// caller its own request as the response's Request, as the attempt does.
func TestHedgingCopyOwnsItsRequest(t *testing.T) {
	for _, copyWins := range []bool{false, true} {
		t.Run(fmt.Sprint("copy wins: ", copyWins), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				copySent := make(chan struct{})
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					isCopy := n.Add(1) == 2
					if isCopy {
						close(copySent)
					} else {
						<-copySent
					}
					if isCopy != copyWins {
						<-req.Context().Done() // the loser, until canceled
						return nil, context.Cause(req.Context())
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{Delay: time.Millisecond}))
				req := newRequest(t, context.Background(), "GET", "http://api.test/v1/poll", nil)
				req.Header.Set("X-A", "1")
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Request != req {
					t.Errorf("resp.Request = %p, want the caller's request %p", resp.Request, req)
				}
				readBody(t, resp)
				resp.Body.Close()
				for i := range 100 { // the caller reuses its request
					req.Header.Set("If-None-Match", strconv.Itoa(i))
					req.URL.RawQuery = "page=" + strconv.Itoa(i)
				}
				synctest.Wait() // the loser's goroutine ends
				if n.Load() != 2 {
					t.Errorf("%d requests, want the attempt and one copy", n.Load())
				}
			})
		})
	}
}

func TestHedgingAllFailed(t *testing.T) {
	t.Run("a response, then an error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var calls atomic.Int32
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if calls.Add(1)%2 == 1 { // the attempt itself
					time.Sleep(100 * time.Millisecond)
					return &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader("oops")), Request: req}, nil
				}
				time.Sleep(80 * time.Millisecond) // its copy, failing within a hedging delay of the attempt's 500
				return nil, errReset
			})
			tr := New(rt, WithMaxRetries(1), WithBackoff(time.Millisecond, time.Millisecond),
				WithHedging(Hedging{Delay: 50 * time.Millisecond}))
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatalf("%d requests: %v; want the last attempt's 500", calls.Load(), err)
			}
			if body := readBody(t, resp); resp.StatusCode != 500 || body != "oops" {
				t.Errorf("%d %q, want the last attempt's 500 and its body", resp.StatusCode, body)
			}
			resp.Body.Close()
			synctest.Wait()
		})
	})
	t.Run("a keyed write's 409, then an error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			var calls int
			var stored, inFlight bool
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				io.Copy(io.Discard, req.Body)
				req.Body.Close()
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				switch n {
				case 1: // the server processes the write for 100ms; the connection breaks at 30ms
					mu.Lock()
					inFlight = true
					mu.Unlock()
					time.AfterFunc(100*time.Millisecond, func() {
						mu.Lock()
						inFlight, stored = false, true
						mu.Unlock()
					})
					time.Sleep(30 * time.Millisecond)
					return nil, errReset
				default:
					time.Sleep(15 * time.Millisecond)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case inFlight:
						return &http.Response{StatusCode: http.StatusConflict, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
							Body: io.NopCloser(strings.NewReader(`{"error":{"code":"conflict","message":"a request with this key is in progress"}}`))}, nil
					case stored:
						return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
					}
					return nil, errReset
				}
			})
			tr := New(rt, WithKeyHonoringHosts("api.test"), WithBackoff(200*time.Millisecond, 200*time.Millisecond),
				withRand(func(int64) int64 { return 0 }), WithHedging(Hedging{Delay: 20 * time.Millisecond}))
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			synctest.Wait()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("%d after %d requests, want the write's 201: the 409 was the attempt's own key in progress", resp.StatusCode, calls)
			}
		})
	})
}

// TestHedgingAllowanceKeptWhenBudgetRefuses: a copy the retry budget
// refuses is not sent, and spends nothing of the host's hedge allowance:
// once the budget holds a retry again, the next slow call gets its copy.
// (The allowance was spent first: ten slow calls that the budget refused a
// copy emptied it, and the host's slow calls went unhedged for twenty
// calls more, although no copy had been sent.)
func TestHedgingAllowanceKeptWhenBudgetRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
		// A budget of one retry, refilled by ten answers.
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithRetryBudget(RetryBudget{Burst: 1, Ratio: 0.1}))
		var r Report
		ctx := WithReport(context.Background(), &r)
		var copies []int
		for range 11 {
			resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			copies = append(copies, r.Hedges)
		}
		synctest.Wait()
		want := []int{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
		if !slices.Equal(copies, want) {
			t.Errorf("copies per call %v, want %v: the first, then one once the budget refilled", copies, want)
		}
	})
}

// TestHedgingSlowGetBody: the answer of an attempt is not held up by the
// caller's GetBody making the body of a copy: the attempt that answered
// while GetBody ran is returned at once, and the body GetBody returns
// afterwards, of a copy no longer needed, is closed unsent. In a bubble,
// so that the attempt has read its body before the copy is due (on a
// busy machine, a copy due 1ms later took the unread body over, and the
// attempt's Read waited for its GetBody: 1 run in 900 failed).
func TestHedgingSlowGetBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inGetBody, release := make(chan struct{}), make(chan struct{})
		var sent atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			sent.Add(1)
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			<-inGetBody // the attempt answers while GetBody runs
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://api.test/x", strings.NewReader("query"))
		req.Body = streamBody("query") // not in memory: the copy's body is GetBody's
		copyBody := newTrackedBody("query")
		req.GetBody = func() (io.ReadCloser, error) {
			close(inGetBody)
			<-release
			return copyBody, nil
		}
		done := make(chan struct{})
		var resp *http.Response
		var err error
		go func() {
			defer close(done)
			resp, err = tr.RoundTrip(req)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			close(release)
			<-done
			t.Fatal("RoundTrip waited for GetBody to return, though its attempt had answered")
		}
		close(release)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || sent.Load() != 1 {
			t.Errorf("status %d after %d requests, want 200 after 1", resp.StatusCode, sent.Load())
		}
		waitClosed(t, copyBody)
	})
}

// TestHedgingUnsentCopyGivesBack: a copy that never reaches the wire gives
// back what it took from the host's hedge allowance and retry budget, as a
// copy the budget refuses does: a copy the rate limiter refuses (the
// attempt itself waiting there longer than the hedge delay, the copy
// would wait longer still: see TestHedgingKeepsThePace), a copy whose
// attempt answered while the caller's
// GetBody made its body, and a copy whose GetBody failed. (They kept both
// spent: a host whose calls wait for its rate limit emptied its allowance
// and its budget without a copy sent, and its retries were then refused.)
func TestHedgingUnsentCopyGivesBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		getBody func() (io.ReadCloser, error)
	}{
		// The first call takes the limiter's token; the second waits 1s
		// for the next one, and its copy, launched after 20ms, would
		// wait 2s.
		{name: "refused by the rate limiter", opts: []Option{WithRateLimit(1, 1)}},
		{name: "decided while GetBody ran", getBody: func() (io.ReadCloser, error) {
			time.Sleep(time.Second) // the attempt answers meanwhile
			return io.NopCloser(strings.NewReader("query")), nil
		}},
		{name: "GetBody failed", getBody: func() (io.ReadCloser, error) {
			return nil, io.ErrUnexpectedEOF
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &latencyRT{latency: func(int) time.Duration { return 100 * time.Millisecond }}
				tr := New(rt, append([]Option{WithHedging(Hedging{Delay: 20 * time.Millisecond})}, tc.opts...)...)
				var r Report
				ctx := WithReport(context.Background(), &r)
				var hb *hostBudget
				for i := range 2 {
					var body io.Reader
					if tc.getBody != nil {
						body = strings.NewReader("query")
					}
					req := newRequest(t, ctx, "GET", "http://api.test/", body)
					if tc.getBody != nil {
						req.Body = streamBody("query") // not in memory: the copy's body is GetBody's
						req.GetBody = tc.getBody
					}
					if i == 0 {
						if tc.getBody != nil {
							continue
						}
						// Hedging off for the call that takes the token.
						req = req.WithContext(WithCallOptions(ctx, WithoutHedging()))
					}
					hb = tr.budgets.get(req)
					resp, err := roundTrip(t, tr, req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				}
				time.Sleep(time.Minute) // the copies end
				synctest.Wait()
				if n := rt.count(); n != 1+len(tc.opts) {
					t.Fatalf("%d requests reached the server, want %d: no copy", n, 1+len(tc.opts))
				}
				if got, want := hb.hedgeTokens.Load(), int64(hedgeBurst*budgetUnit); got != want {
					t.Errorf("hedge allowance %v after a copy never sent, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
				}
				if got, want := hb.tokens.Load(), tr.budgets.burst; got != want {
					t.Errorf("retry budget %v after a copy never sent, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
				}
			})
		})
	}
}

// TestHedgedContextReleasedAtEOF: the context of the copy that won a
// hedged attempt, derived from the caller's cancelable context, is
// released once the caller has read the response's body to its end,
// closed or not, as without hedging (see TestAttemptContextReleasedAtEOF).
func TestHedgedContextReleasedAtEOF(t *testing.T) {
	ctx := newAfterFuncCtx()
	var seen context.Context // the winning copy's
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		seen = req.Context()
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("hello")), Request: req}, nil
	})
	tr := New(base, WithHedging(Hedging{Delay: time.Hour})) // answered before any copy
	resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://a.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := ctx.numLive(); n != 1 {
		t.Fatalf("%d contexts registered with the caller's while the body is unread, want 1 (the copy's)", n)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if n := ctx.numLive(); n != 0 || seen.Err() == nil {
		t.Errorf("once the body was read to its end: %d contexts registered, the attempt's Err() = %v; want 0, context.Canceled", n, seen.Err())
	}
	resp.Body.Close()
}

// TestHedgingCapturedBody: a keyed write whose body has no GetBody is
// hedged from its capture once the attempt has sent the body whole: the
// copy carries the same bytes, and overtakes the slow first. A copy due
// while the attempt is still sending the body is not sent (and costs
// nothing). Such writes were never hedged.
func TestHedgingCapturedBody(t *testing.T) {
	const payload = `{"text":"hello"}`
	for _, tc := range []struct {
		name      string
		readFirst bool // the first request reads its body whole before it stalls
		want      int  // requests
	}{
		{"sent whole", true, 2},
		{"still being sent", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var bodies []string
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := len(bodies)
					bodies = append(bodies, "")
					mu.Unlock()
					wait := 10 * time.Millisecond
					if i == 0 {
						wait = time.Second
					}
					if i > 0 || tc.readFirst {
						b, _ := io.ReadAll(req.Body)
						mu.Lock()
						bodies[i] = string(b)
						mu.Unlock()
					}
					select {
					case <-time.After(wait):
						return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
					case <-req.Context().Done():
						return nil, context.Cause(req.Context())
					}
				})
				tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
				var r Report
				req := newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/v1/posts", io.NopCloser(strings.NewReader(payload)))
				req.ContentLength = int64(len(payload))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if len(bodies) != tc.want || r.Hedges != tc.want-1 {
					t.Fatalf("%d requests, %d hedges; want %d and %d", len(bodies), r.Hedges, tc.want, tc.want-1)
				}
				if tc.want == 2 && (bodies[0] != payload || bodies[1] != payload) {
					t.Errorf("bodies %q, want the payload twice", bodies)
				}
			})
		})
	}
}

// TestHedgingLostCopyHoldsKey: when every copy of a hedged keyed write
// fails, one of them after it may have been sent (its connection lost)
// and another with a 500, the retry that follows knows that the server
// may hold the key: its 409 (the lost copy still in progress) is retried,
// and the call gets the stored answer, as without hedging. The call
// forgot the lost copy, whichever copy decided the attempt (the 500, the
// first response), and returned the 409 for a write that was done.
func TestHedgingLostCopyHoldsKey(t *testing.T) {
	errLost := errors.New("read: connection reset by peer")
	for _, tc := range []struct {
		name  string
		first func(req *http.Request) (*http.Response, error) // the attempt itself
		copy  func(req *http.Request) (*http.Response, error) // its copy, sent at 50ms
	}{
		{"copy lost", func(req *http.Request) (*http.Response, error) {
			time.Sleep(100 * time.Millisecond)
			return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
		}, func(*http.Request) (*http.Response, error) {
			time.Sleep(20 * time.Millisecond)
			return nil, errLost
		}},
		{"attempt lost", func(*http.Request) (*http.Response, error) {
			time.Sleep(100 * time.Millisecond)
			return nil, errLost
		}, func(req *http.Request) (*http.Response, error) {
			time.Sleep(20 * time.Millisecond)
			return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var keys []string
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := len(keys)
					keys = append(keys, wireHeader(req.Header, "Idempotency-Key"))
					mu.Unlock()
					req.Body.Close()
					switch i {
					case 0:
						return tc.first(req)
					case 1:
						return tc.copy(req)
					case 2: // the key is held by the request lost
						return &http.Response{StatusCode: http.StatusConflict, Body: http.NoBody, Request: req}, nil
					}
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
				var r Report
				resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated || r.Hedges != 1 || len(keys) != 4 {
					t.Errorf("status %d, %d copies, %d requests; want 201 (the stored answer), 1 and 4", resp.StatusCode, r.Hedges, len(keys))
				}
				for _, k := range keys {
					if k == "" || k != keys[0] {
						t.Errorf("keys %q, want one key", keys)
						break
					}
				}
			})
		})
	}
}

// TestHedgingNoCopyOnceCallEnded: no copy is sent for a call whose caller
// gave up (its context canceled, its deadline passed) or whose budget
// (WithMaxElapsed) has run out while its attempt still runs, in a base
// RoundTripper that does not watch the attempt's context: a plain client
// sends that one request, and the call sent a second one, paid from the
// retry budget, after the caller had gone. So too when the call ends while
// the caller's GetBody makes the copy's body (from 50ms to 70ms): the copy
// went on to the base once GetBody returned.
func TestHedgingNoCopyOnceCallEnded(t *testing.T) {
	for _, duringGetBody := range []bool{false, true} {
		end := 10 * time.Millisecond // before the copy's turn
		if duringGetBody {
			end = 60 * time.Millisecond
		}
		for _, tc := range []struct {
			name string
			ctx  func(t *testing.T) context.Context
			opt  Option
		}{
			{"canceled", func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(end, cancel)
				return ctx
			}, nil},
			{"deadline", func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), end)
				t.Cleanup(cancel)
				return ctx
			}, nil},
			{"budget", func(*testing.T) context.Context { return context.Background() }, WithMaxElapsed(end)},
		} {
			t.Run(fmt.Sprintf("%s at %v", tc.name, end), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var n atomic.Int32
					rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						n.Add(1)
						if req.Body != nil {
							io.Copy(io.Discard, req.Body)
							req.Body.Close()
						}
						time.Sleep(100 * time.Millisecond) // its context unwatched
						return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
					})
					tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), tc.opt)
					var r Report
					req := newRequest(t, WithReport(tc.ctx(t), &r), "GET", "http://api.test/", nil)
					if duringGetBody {
						req = newRequest(t, WithReport(tc.ctx(t), &r), "OPTIONS", "http://api.test/", strings.NewReader("q"))
						req.Body = streamBody("q") // not in memory: the copy's body is GetBody's
						req.GetBody = func() (io.ReadCloser, error) {
							time.Sleep(20 * time.Millisecond) // the copy's, from 50ms to 70ms
							return io.NopCloser(strings.NewReader("q")), nil
						}
					}
					resp, err := roundTrip(t, tr, req)
					if err == nil {
						resp.Body.Close()
					}
					time.Sleep(time.Second) // every request ended
					if n.Load() != 1 || r.Hedges != 0 {
						t.Errorf("%d requests, %d copies; want 1 and none", n.Load(), r.Hedges)
					}
				})
			})
		}
	}
}

// TestHedgingUnsentCopyKeepsTheConflict: a keyed write's 409 is the
// attempt's answer when its only copy never reached the wire (the rate
// limiter refused it): the refusal of a copy that was not sent is no
// result of the attempt, which returns the 409 as it would without
// hedging, not an ErrRateLimited for a write the server answered.
func TestHedgingUnsentCopyKeepsTheConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls.Add(1)
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			time.Sleep(100 * time.Millisecond)
			return &http.Response{StatusCode: http.StatusConflict, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"error":{"code":"order_already_shipped","message":"the order was shipped"}}`))}, nil
		})
		tr := New(rt, WithRateLimit(1, 1), WithKeyHonoringHosts("api.test"),
			WithHedging(Hedging{Delay: 20 * time.Millisecond}))
		var r Report
		resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/orders/1/cancel", strings.NewReader("x")))
		if err != nil {
			t.Fatalf("%d requests: %v; want the server's 409", calls.Load(), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || calls.Load() != 1 || r.Hedges != 0 {
			t.Errorf("status %d after %d requests, %d hedges; want the 409 of the one request sent", resp.StatusCode, calls.Load(), r.Hedges)
		}
		synctest.Wait()
	})
}

// TestHedgingFailureWaitsNotPastTheDeadline: once the attempt failed, its
// copies in flight get one hedging delay more to answer, but not past the
// call's deadline (the context's, WithMaxElapsed's), nor once the caller
// gave up: a copy whose base does not watch its context must not hold the
// attempt's failure past them, where a plain client, which sends no copy,
// returns it at once.
func TestHedgingFailureWaitsNotPastTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{"context deadline", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 1500*time.Millisecond)
		}},
		{"WithMaxElapsed", WithMaxElapsed(1500 * time.Millisecond), func(ctx context.Context) (context.Context, context.CancelFunc) {
			return ctx, func() {}
		}},
		{"caller cancels", nil, func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(1500*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 { // the attempt: a 503 at 1.4s
						time.Sleep(1400 * time.Millisecond)
						return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
					}
					time.Sleep(10 * time.Second) // its copy, sent at 1s: deaf to its context
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				})
				opts := []Option{WithHedging(Hedging{Delay: time.Second})}
				if tc.opt != nil {
					opts = append(opts, tc.opt)
				}
				tr := New(rt, opts...)
				ctx, cancel := tc.ctx(context.Background())
				defer cancel()
				start := time.Now()
				resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/", nil))
				if took := time.Since(start); took > 1500*time.Millisecond {
					t.Errorf("returned after %v (%v, %v), past the call's end at 1.5s", took, resp, err)
				}
				if resp != nil {
					resp.Body.Close()
				}
				time.Sleep(10 * time.Second) // the deaf copy ends
				synctest.Wait()
			})
		})
	}
}

// TestHedgingPanicReportsTheCopies: the Report of a call that panics says
// what it did until then (see WithReport), the copies it sent included: a
// hedged attempt whose copy's base panicked sent two requests, and its
// Report says one attempt and one hedge, as the Report of the same
// attempt says when it returns.
func TestHedgingPanicReportsTheCopies(t *testing.T) {
	for _, panicker := range []int32{1, 2} { // the attempt itself, its copy
		t.Run(fmt.Sprint("request ", panicker, " panics"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) != panicker {
						<-req.Context().Done() // until the panic decides the attempt
						return nil, context.Cause(req.Context())
					}
					time.Sleep(20 * time.Millisecond)
					panic("base exploded")
				})
				tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				var r Report
				var got any
				func() {
					defer func() { got = recover() }()
					resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
					if err == nil {
						resp.Body.Close()
					}
				}()
				synctest.Wait()
				if got != "base exploded" {
					t.Fatalf("recovered %v, want the base's panic", got)
				}
				if calls.Load() != 2 || r.Attempts != 2 || r.Hedges != 1 {
					t.Errorf("%d requests sent; Report: %d attempts, %d hedges; want 2 and 1", calls.Load(), r.Attempts, r.Hedges)
				}
			})
		})
	}
}

// TestHedgingNoCopyAfterTheAttemptFailed: once the attempt itself failed,
// the copies in flight get one hedging delay more to answer, but no new
// copy is sent meanwhile (MaxHedges 2): one sent then would be canceled at
// the end of that delay, a request spent on a failed attempt without the
// backoff of a retry.
func TestHedgingNoCopyAfterTheAttemptFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch calls.Add(1) {
			case 1: // the attempt: a 503 at 60ms
				time.Sleep(60 * time.Millisecond)
				return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
			case 2: // its first copy, sent at 50ms, hangs
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithMaxRetries(1), WithBackoff(time.Second, time.Second), WithHedging(Hedging{Delay: 50 * time.Millisecond, MaxHedges: 2}))
		var r Report
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if calls.Load() != 3 || r.Hedges != 1 {
			t.Errorf("%d requests, %d hedges; want 3 and 1: the attempt, its copy in flight as it failed, and the retry", calls.Load(), r.Hedges)
		}
	})
}

// TestHedgingCopyUnsentAfterTheAttemptFailedCountsNothing: a copy that was
// on its way through the layers as the attempt itself failed is not sent
// (see TestHedgingNoCopyAfterTheAttemptFailed), and counts against
// nothing: not a failure of its host's breaker (two in a row trip it
// here), which would refuse the retry that a plain client's caller, and
// the call without hedging, would have made.
func TestHedgingCopyUnsentAfterTheAttemptFailedCountsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 { // the attempt: a 503 at 60ms
				time.Sleep(60 * time.Millisecond)
				return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		var r Report
		ctx := WithReport(context.Background(), &r)
		var held atomic.Bool
		key := func(req *http.Request) string {
			// The copy, launched at 50ms once the attempt is at the
			// base, reaches its breaker at 70ms, once the attempt
			// failed. (Its launch asks about the breaker with the
			// attempt's request, whose context, as the caller's, is
			// never done; the attempt asks before it is sent.)
			if req.Context().Done() != nil && calls.Load() > 0 && held.CompareAndSwap(false, true) {
				time.Sleep(20 * time.Millisecond)
			}
			return "api.test"
		}
		tr := New(rt, WithMaxRetries(1), WithBackoff(time.Second, time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 2, Key: key}),
			WithHedging(Hedging{Delay: 50 * time.Millisecond}))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if resp.StatusCode != 200 || calls.Load() != 2 || r.Hedges != 0 {
			t.Errorf("status %d after %d requests, %d hedges; want 200 after 2 (the attempt and its retry), no hedge", resp.StatusCode, calls.Load(), r.Hedges)
		}
		if !held.Load() {
			t.Error("the copy never reached its breaker")
		}
	})
}

// TestHedgingCopyUnsentAfterTheAttemptFailedKeepsThePace: a copy that took
// its turn of the rate limiter's pace, and is not sent because the
// attempt itself failed meanwhile, gives its turn back, as a copy the
// breaker refuses does: the retry that follows goes after its backoff, as
// without hedging, not one turn of the pace (10s) later.
func TestHedgingCopyUnsentAfterTheAttemptFailedKeepsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var retryAt atomic.Int64
		start := time.Now()
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 { // the attempt: a 503 at 60ms
				time.Sleep(60 * time.Millisecond)
				return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
			}
			retryAt.Store(int64(time.Since(start)))
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		ctx := context.Background()
		var held atomic.Bool
		key := func(req *http.Request) string {
			// The copy, launched at 50ms with a turn of the pace once
			// the attempt is at the base, reaches its breaker at 70ms,
			// once the attempt failed.
			if req.Context() != ctx && calls.Load() > 0 && held.CompareAndSwap(false, true) {
				time.Sleep(20 * time.Millisecond)
			}
			return "api.test"
		}
		tr := New(rt, WithMaxRetries(1), WithBackoff(time.Second, time.Second), WithRateLimit(0.1, 2),
			WithBreaker(BreakerSettings{Key: key}), WithHedging(Hedging{Delay: 50 * time.Millisecond}))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if d := time.Duration(retryAt.Load()); resp.StatusCode != 200 || calls.Load() != 2 || d > 1100*time.Millisecond {
			t.Errorf("status %d after %d requests, the retry sent at %v; want 200 after 2, the retry at 1.06s", resp.StatusCode, calls.Load(), d)
		}
		if !held.Load() {
			t.Error("the copy never reached its breaker")
		}
	})
}

// TestHedgingLostCopyIsTheLastAnswer: a hedged attempt of a keyed write
// whose own request provably never left (its dial refused, 30ms after it
// was sent) while its copy may have reached the server and got no answer
// (reset, or hung past the hedging delay) may have had the write
// processed: the 503 the call held from its first attempt is no longer
// the host's last word. When the retry that follows is refused (the retry
// budget, spent on the retry and the copy), the call fails with the
// attempt's error, which a Transport above, or its caller, may not take
// for a write never sent. The call returned the 503 with no error: a
// write that may have been stored, reported unprocessed. (The attempt's
// state described the attempt alone, the copy lost only in the run.)
func TestHedgingLostCopyIsTheLastAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		copy rtStep // the copy, sent at 10ms
	}{
		{"copy reset", rtStep{err: errReset}},
		{"copy hung", rtStep{hang: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &rtScript{steps: []rtStep{
					{status: 503, body: "busy"},
					{err: errRefused, before: func(*http.Request) { time.Sleep(30 * time.Millisecond) }},
					tc.copy,
					{status: 201, body: "created"},
				}}
				tr := New(sc, fastRetries, WithRetryBudget(RetryBudget{Burst: 2, Ratio: 0.001}),
					WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
				var r Report
				resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
				synctest.Wait()
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%d after %d requests (%d copies); want the attempt's error: its copy may have stored the write", resp.StatusCode, sc.numCalls(), r.Hedges)
				}
				if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, errRefused) || sc.numCalls() != 3 || r.Hedges != 1 {
					t.Errorf("%v after %d requests (%d copies); want the spent budget and the refused dial after 3 (1 copy)", err, sc.numCalls(), r.Hedges)
				}
				if _, neverSent := classifyErr(err); neverSent {
					t.Errorf("%v reads as never sent: a Transport above would resend the write", err)
				}
				if !sc.body(0).isClosed() {
					t.Error("the 503 held was not closed")
				}
			})
		})
	}
}

// TestHedgingCopyWaitsForNoTurnOfThePace: a hedged copy that finds no
// token of its partition's pace (WithRateLimit) at once is refused: it
// does not wait for the pace's next turn, to go out then, long after its
// hedging delay, as one more request the pace had not planned for.
func TestHedgingCopyWaitsForNoTurnOfThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(i int) time.Duration {
			if i == 0 {
				return 5 * time.Second // the attempt, which took the pace's token
			}
			return 10 * time.Millisecond
		}}
		tr := New(rt, WithRateLimit(1, 1), WithHedging(Hedging{Delay: 100 * time.Millisecond}))
		took, r := timedGet(t, tr, "http://api.test/")
		if took != 5*time.Second || r.Hedges != 0 || rt.count() != 1 {
			t.Errorf("answered after %v with %d hedges, %d requests; want 5s, 0 and 1: the copy waits for no turn of the pace", took, r.Hedges, rt.count())
		}
	})
}
