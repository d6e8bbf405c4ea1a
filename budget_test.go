package resilient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// randomFaults is a RoundTripper that answers 503 with probability p and
// 200 otherwise, from a seeded generator, and counts attempts.
type randomFaults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	p        float64
	attempts atomic.Int64
}

func newRandomFaults(p float64, seed uint64) *randomFaults {
	return &randomFaults{rng: rand.New(rand.NewPCG(seed, seed)), p: p}
}

func (f *randomFaults) RoundTrip(req *http.Request) (*http.Response, error) {
	f.attempts.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	f.mu.Lock()
	fail := f.rng.Float64() < f.p
	f.mu.Unlock()
	status := 200
	if fail {
		status = 503
	}
	return &http.Response{StatusCode: status, Body: http.NoBody, Request: req}, nil
}

// calls makes n sequential GETs to url and returns how many got a 200.
func calls(t *testing.T, rt http.RoundTripper, url string, n int) (ok int) {
	t.Helper()
	for range n {
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", url, nil))
		if err == nil {
			if resp.StatusCode == 200 {
				ok++
			}
			resp.Body.Close()
		}
	}
	return ok
}

func TestRetryBudgetOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int64 // attempts for 1000 calls
	}{
		{"default", nil, 1000 + DefaultRetryBudgetBurst},
		{"burst 3", []Option{WithRetryBudget(RetryBudget{Burst: 3})}, 1003},
		{"off", []Option{WithoutRetryBudget()}, 6000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRandomFaults(1, 1) // a full outage
			tr := New(f, append([]Option{fastRetries, WithoutBreaker()}, tc.opts...)...)
			calls(t, tr, "http://api.test/", 1000)
			if n := f.attempts.Load(); n != tc.want {
				t.Errorf("%d attempts for 1000 calls, want %d", n, tc.want)
			}
		})
	}
}

// TestRetryBudgetPartialFailures: a host that fails 10% of attempts keeps
// its calls succeeding; one that fails 40% is not amplified past 1.5.
func TestRetryBudgetPartialFailures(t *testing.T) {
	const n = 20000
	f := newRandomFaults(0.1, 7)
	ok := calls(t, New(f, fastRetries, WithoutBreaker()), "http://api.test/", n)
	if rate := float64(ok) / n; rate < 0.999 {
		t.Errorf("10%% faults: %.4f of calls succeeded, want at least 0.999", rate)
	}
	f = newRandomFaults(0.4, 7)
	ok = calls(t, New(f, fastRetries, WithoutBreaker()), "http://api.test/", n)
	amp := float64(f.attempts.Load()) / n
	t.Logf("40%% faults: %.4f succeeded, %.3f attempts per call", float64(ok)/n, amp)
	if amp > 1.5 {
		t.Errorf("40%% faults: %.3f attempts per call, want at most 1.5", amp)
	}
	if float64(ok)/n < 0.6 {
		t.Errorf("40%% faults: %.4f succeeded, want at least what one attempt gives", float64(ok)/n)
	}
}

// TestRetryBudgetStackedRetries: an SDK that makes 3 attempts per call over
// the Transport against a persistent 500 costs about 3 server attempts
// per SDK call, not 18.
func TestRetryBudgetStackedRetries(t *testing.T) {
	f := newRandomFaults(1, 3)
	tr := New(f, fastRetries, WithoutBreaker())
	const n = 1000
	for range n {
		for range 3 { // the SDK's own attempts
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err == nil {
				resp.Body.Close()
			}
		}
	}
	if per := float64(f.attempts.Load()) / n; per > 3.1 {
		t.Errorf("%.3f server attempts per SDK call, want at most 3.1", per)
	}
}

// TestRetryBudgetRefusal: a refused retry returns the last response, with
// StopRetryBudget; without one, an error wrapping ErrRetryBudgetExhausted
// and the attempt's cause.
func TestRetryBudgetRefusal(t *testing.T) {
	var stops []StopReason
	obs := WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) })
	s := &rtScript{steps: []rtStep{{status: 503, body: "busy"}}}
	tr := New(s, fastRetries, WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 1}), obs)
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil || readBody(t, resp) != "busy" || s.numCalls() != 2 {
		t.Fatalf("RoundTrip = %v, %v after %d attempts; want the 503 after 2 (one retry paid)", resp, err, s.numCalls())
	}
	if stops[len(stops)-1] != StopRetryBudget {
		t.Errorf("StopReason %q, want %q", stops[len(stops)-1], StopRetryBudget)
	}

	s = &rtScript{steps: []rtStep{{err: errRefused}}}
	tr = New(s, fastRetries, WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 0.5}))
	_, err = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, syscall.ECONNREFUSED) || s.numCalls() != 1 {
		t.Errorf("err = %v after %d attempts; want ErrRetryBudgetExhausted and the cause after 1", err, s.numCalls())
	}
}

// TestRetryBudgetPerHost: a host's spent budget leaves the others alone;
// spellings of one host share one budget; a new host starts full.
func TestRetryBudgetPerHost(t *testing.T) {
	f := newRandomFaults(1, 5)
	tr := New(f, fastRetries, WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 2}))
	calls(t, tr, "http://a.test/", 10) // spends a.test's budget
	if n := f.attempts.Load(); n != 12 {
		t.Fatalf("%d attempts, want 12", n)
	}
	calls(t, tr, "http://A.TEST:80/", 1)
	if n := f.attempts.Load(); n != 13 {
		t.Errorf("another spelling of a.test retried: %d attempts, want 13", n)
	}
	calls(t, tr, "http://b.test/", 1) // cold start: retried
	if n := f.attempts.Load(); n != 16 {
		t.Errorf("new host: %d attempts in all, want 16 (its first call retried)", n)
	}
}

// TestRetryBudgetRefills: answers refill the budget, a retry the server
// asked for costs less, and a full budget takes no write.
func TestRetryBudgetRefills(t *testing.T) {
	s := newBudgetSet(RetryBudget{}, nil)
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	b := s.get(req)
	for range DefaultRetryBudgetBurst {
		if !s.withdraw(b, false) {
			t.Fatal("a full budget refused a retry")
		}
	}
	if s.withdraw(b, false) || s.withdraw(b, true) {
		t.Fatal("an empty budget paid for a retry")
	}
	for range 5 {
		s.deposit(b) // 5 × 0.2 = 1 retry
	}
	if !s.withdraw(b, false) || s.withdraw(b, false) {
		t.Error("five answers did not pay for exactly one blind retry")
	}
	for range 1 {
		s.deposit(b) // 0.2: two throttled retries at 0.1
	}
	if !s.withdraw(b, true) || !s.withdraw(b, true) || s.withdraw(b, true) {
		t.Error("one answer did not pay for exactly two throttled retries")
	}
	for range 1000 {
		s.deposit(b)
	}
	if got := b.tokens.Load(); got != DefaultRetryBudgetBurst*budgetUnit {
		t.Errorf("budget holds %d, want it capped at %d", got, DefaultRetryBudgetBurst*budgetUnit)
	}
}

func TestRetryBudgetBounded(t *testing.T) {
	s := newBudgetSet(RetryBudget{}, nil)
	for i := range maxBudgets + 10 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://h%d.test/", i), nil)
		s.get(req)
	}
	if n := s.m.len(); n > maxBudgets {
		t.Errorf("%d budgets held, want at most %d", n, maxBudgets)
	}
}

func TestWithRetryBudgetPanics(t *testing.T) {
	for _, b := range []RetryBudget{{Ratio: -1}, {Burst: -1}, {ThrottledCost: 2}, {Ratio: math.NaN()}, {Burst: math.Inf(1)}} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "WithRetryBudget") {
					t.Errorf("WithRetryBudget(%+v): panic %v, want one naming the option", b, r)
				}
			}()
			WithRetryBudget(b)
		}()
	}
}

// TestRetryBudgetNotFullCount checks the count of budgets that are not
// full, by which an answer skips the lookup of its host while every budget
// is full: each budget that leaves full counts once, and stops counting
// when deposits fill it again, including with concurrent retries and
// answers.
func TestRetryBudgetNotFullCount(t *testing.T) {
	s := newBudgetSet(RetryBudget{}, nil)
	a := s.get(newRequest(t, context.Background(), "GET", "http://a.test/", nil))
	b := s.get(newRequest(t, context.Background(), "GET", "http://b.test/", nil))
	notFull := func() int64 { return s.gen.Load().notFull.Load() }
	if n := notFull(); n != 0 {
		t.Fatalf("%d budgets not full at the start, want 0", n)
	}
	s.withdraw(a, false)
	s.withdraw(a, true)
	s.withdraw(b, true)
	if n := notFull(); n != 2 {
		t.Errorf("%d budgets not full after retries on two hosts, want 2", n)
	}
	for range 10 {
		s.deposit(a)
	}
	if n := notFull(); n != 1 || a.tokens.Load() != s.burst {
		t.Errorf("%d budgets not full after a's refill (a holds %d), want 1", n, a.tokens.Load())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if (g+i)%3 == 0 {
					s.withdraw(b, i%2 == 0)
				} else {
					s.deposit(b)
				}
			}
		})
	}
	wg.Wait()
	for range 1000 {
		s.deposit(b)
	}
	if n := notFull(); n != 0 {
		t.Errorf("%d budgets not full once all are full again, want 0", n)
	}
}

// TestRetryBudgetKeyless: a request for which the breaker's Key returns ""
// has no budget; its answers and retries must not touch one (this used to
// dereference a nil budget on every success).
func TestRetryBudgetKeyless(t *testing.T) {
	t.Parallel()
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
	tr := New(s, fastRetries, WithBreaker(BreakerSettings{Key: func(*http.Request) string { return "" }}))
	if ok := calls(t, tr, "http://a.test/", 3); ok != 3 || s.numCalls() != 4 {
		t.Errorf("%d of 3 calls succeeded in %d attempts, want 3 in 4 (the first retried)", ok, s.numCalls())
	}
}

// TestRetryBudgetLargeValues: a budget too large to run out (a Burst or
// Ratio of 1e18, finite as WithRetryBudget asks) lets every retry through:
// its fixed-point tokens saturate instead of overflowing to a negative
// balance that refused every retry.
func TestRetryBudgetLargeValues(t *testing.T) {
	for _, b := range []RetryBudget{{Burst: 1e18}, {Burst: math.MaxFloat64}, {Ratio: 1e18, Burst: 1e18}} {
		s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
		resp, err := roundTrip(t, New(s, fastRetries, WithRetryBudget(b)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatalf("WithRetryBudget(%+v): %v", b, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || s.numCalls() != 2 {
			t.Errorf("WithRetryBudget(%+v): %d after %d attempts, want 200 after a retry", b, resp.StatusCode, s.numCalls())
		}
	}
}

// TestRetryBudgetTinyThrottledCost: a ThrottledCost too small for the
// budget's fixed-point tokens (a ten-thousandth of a retry) still costs
// something, so that the budget bounds the retries of a host that answers
// every request with a 429: it rounded to nothing, and every such retry
// went through, whatever the budget held.
func TestRetryBudgetTinyThrottledCost(t *testing.T) {
	t.Parallel()
	s := &rtScript{steps: []rtStep{{status: 429}}}
	tr := New(s, fastRetries, WithoutBreaker(), WithoutRateLimit(), WithMaxRetries(1),
		WithRetryBudget(RetryBudget{Burst: 0.002, ThrottledCost: 1e-4}))
	calls(t, tr, "http://api.test/", 100)
	// 0.002 tokens pay for 2 retries at the smallest cost the budget
	// counts (a thousandth), 20 at the exact one: never 100.
	if n := s.numCalls(); n > 100+20 {
		t.Errorf("%d attempts for 100 calls, want at most 120: the budget bounds throttled retries", n)
	}
}

// TestRetryBudgetRefusedRetryGivesBack: a retry that a layer of the chain
// refuses without sending it (here the rate limiter, whose next token
// comes after the call's budget) gives back what it took from the retry
// budget, as a hedged copy that is never sent does: nothing reached the
// host. It kept it, and the host's next failure found the budget spent,
// though the host had seen a single attempt.
func TestRetryBudgetRefusedRetryGivesBack(t *testing.T) {
	t.Run("refused by the rate limiter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
			tr := New(s, fastRetries, WithoutBreaker(), WithRateLimit(1, 1), WithRetryBudget(RetryBudget{Burst: 1}))
			// The retry would wait a second for the limiter's token, past
			// the call's budget: refused, the 503 returned.
			ctx := WithCallOptions(context.Background(), WithMaxElapsed(500*time.Millisecond))
			var r Report
			resp, err := roundTrip(t, tr, newRequest(t, WithReport(ctx, &r), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s.numCalls() != 1 || r.Outcome != OutcomeRateLimited {
				t.Fatalf("%d attempts sent, outcome %s; want the retry refused by the rate limiter", s.numCalls(), r.Outcome)
			}
			time.Sleep(2 * time.Second)
			resp, err = roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || s.numCalls() != 3 {
				t.Errorf("second call: %d after %d attempts in all (stop reason %q); want 200, its retry paid by the budget the refused retry gave back", resp.StatusCode, s.numCalls(), r.StopReason)
			}
		})
	})
	t.Run("canceled during its wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
			tr := New(s, WithBackoff(time.Second, time.Second), WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 1}))
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			if _, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil)); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want the cancellation during the wait", err)
			}
			resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
			if resp.StatusCode != 200 || s.numCalls() != 3 {
				t.Errorf("second call: %d after %d attempts in all; want 200, its retry paid by the budget the canceled retry gave back", resp.StatusCode, s.numCalls())
			}
		})
	})
}
