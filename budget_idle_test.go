package resilient

import (
	"math"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryBudgetFreshAfterQuietWeek: a host whose budget an outage spent
// and that is then not called for a week gets its retries back, as a new
// host does, whether its first answer after the week is a blip it retries
// or a success (which deposits a fifth of a retry). Kept spent, the budget
// refused every retry of the host's first failing calls a week later (0
// retries where a new Transport makes 5), refilling only by 5 answers per
// retry; unless the table of 4,096 budgets was full, which dropped it as
// idle after a minute.
func TestRetryBudgetFreshAfterQuietWeek(t *testing.T) {
	for _, first := range []string{"a blip", "a success"} {
		t.Run(first, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var down atomic.Bool
				var attempts atomic.Int64
				var blip atomic.Int64 // attempts to fail after the week
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					attempts.Add(1)
					status := http.StatusOK
					if down.Load() || blip.Add(-1) >= 0 {
						status = http.StatusServiceUnavailable
					}
					return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, fastRetries, WithoutBreaker())
				call := func() int { return get(t, tr, "https://api.test/v1/items") }
				down.Store(true)
				for range 10 {
					call() // the outage spends the budget
				}
				down.Store(false)
				time.Sleep(7 * 24 * time.Hour)
				if first == "a success" {
					if got := call(); got != http.StatusOK {
						t.Fatalf("first call after the week: %d, want 200", got)
					}
				}
				blip.Store(5)
				attempts.Store(0)
				if got := call(); got != http.StatusOK {
					t.Errorf("a call whose first 5 attempts fail, a week after the outage: %d after %d attempts, want 200 after 6", got, attempts.Load())
				}
				checkNotFull(t, tr.budgets)
			})
		})
	}
}

// TestRetryBudgetRefillIsSlow: a host that fails every call regains one
// retry per ten minutes without a call, no more: after an outage spent its
// budget, 20 calls two minutes apart make one attempt each, and 20 calls
// 25 minutes apart three each (the two retries each gap regains), not six
// each, as when a budget idle for a minute was full again.
func TestRetryBudgetRefillIsSlow(t *testing.T) {
	for _, c := range []struct {
		gap  time.Duration
		want int64
	}{{2 * time.Minute, 20}, {25 * time.Minute, 60}} {
		synctest.Test(t, func(t *testing.T) {
			var attempts atomic.Int64
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				attempts.Add(1)
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			})
			tr := New(base, fastRetries, WithoutBreaker())
			call := func() { get(t, tr, "https://api.test/v1/items") }
			for range 10 {
				call() // the outage spends the budget
			}
			attempts.Store(0)
			for range 20 {
				time.Sleep(c.gap)
				call()
			}
			if got := attempts.Load(); got != c.want {
				t.Errorf("20 failing calls %v apart: %d attempts, want %d", c.gap, got, c.want)
			}
		})
	}
}

// TestHostStateShowsIdleRefill: HostState.RetryBudget is what the host's
// next call finds: a budget an outage spent shows the retries it regained
// while the host was not called (one per ten minutes), and a full budget
// after a quiet week; reading it changes nothing. It showed the spent
// budget until the host was called again.
func TestHostStateShowsIdleRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, fastRetries, WithoutBreaker())
		for range 10 {
			get(t, tr, "https://api.test/v1/items") // the outage spends the budget
		}
		spent := hostState(t, tr, "https://api.test").RetryBudget
		if spent >= 1 {
			t.Fatalf("budget after the outage: %v, want below 1", spent)
		}
		time.Sleep(25 * time.Minute)
		for range 2 {
			if got, want := hostState(t, tr, "https://api.test").RetryBudget, spent+2; got != want {
				t.Errorf("budget 25 minutes after the outage: %v, want %v", got, want)
			}
		}
		time.Sleep(7 * 24 * time.Hour)
		if got := hostState(t, tr, "https://api.test").RetryBudget; got != DefaultRetryBudgetBurst {
			t.Errorf("budget a week after the outage: %v, want %v", got, DefaultRetryBudgetBurst)
		}
	})
}

// TestIdleRefillOnce: the retries a budget regains while idle are added
// once however many of the host's calls find it idle at the same moment:
// the first to mark it used adds them. Each caller added them before
// (the mark was a load and a store), so a burst of concurrent retries
// after a quiet spell could take several times what the quiet spell was
// worth.
func TestIdleRefillOnce(t *testing.T) {
	s := newBudgetSet(RetryBudget{}, nil)
	req, _ := http.NewRequest("GET", "https://api.test/", nil)
	b := s.get(req)
	for s.withdraw(b, false) {
	}
	const callers = 2
	for round := range 2000 {
		b.tokens.Store(0)
		b.used.Store(s.now() - 2*int64(budgetRefill/time.Second)) // two retries regained
		var ready atomic.Int32
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				ready.Add(1)
				for ready.Load() < callers { // spin: the callers start together
					runtime.Gosched() // with one P (-cpu 1), the other caller runs now, not at the next preemption
				}
				s.use(b)
			})
		}
		wg.Wait()
		if got := b.tokens.Load(); got != 2*budgetUnit {
			t.Fatalf("round %d: %d callers finding the budget idle for two refills left %v retries, want 2", round, callers, float64(got)/budgetUnit)
		}
	}
}

// TestTinyRatioDeposits: a Ratio finer than the budget's unit (a
// millionth of a retry) deposits that unit, not nothing: a host whose
// budget an outage spent regains its retries by its answers, however
// slowly, as the setting says, where before only idleness refilled it.
func TestTinyRatioDeposits(t *testing.T) {
	for _, ratio := range []float64{1e-7, 1e-12, math.SmallestNonzeroFloat64} {
		s := newBudgetSet(RetryBudget{Ratio: ratio, Burst: 1}, nil)
		req, _ := http.NewRequest("GET", "https://api.test/", nil)
		b := s.get(req)
		if !s.withdraw(b, false) || s.withdraw(b, false) {
			t.Fatalf("Ratio %v: a budget of Burst 1 did not hold exactly one retry", ratio)
		}
		s.deposit(b)
		if got := b.tokens.Load(); got != 1 {
			t.Errorf("Ratio %v: an answer deposited %d millionths of a retry, want 1", ratio, got)
		}
	}
}

// TestIdleRefillFractionalBurst: a budget with a fractional Burst regains
// one retry per budgetRefill idle like any other, up to its burst: 1.5
// after ten minutes gave back all 1.5.
func TestIdleRefillFractionalBurst(t *testing.T) {
	s := newBudgetSet(RetryBudget{Burst: 1.5}, nil)
	req, _ := http.NewRequest("GET", "https://api.test/", nil)
	b := s.get(req)
	for _, c := range []struct {
		idle int64 // in budgetRefill
		want int64
	}{{1, budgetUnit}, {2, 3 * budgetUnit / 2}, {1000, 3 * budgetUnit / 2}} {
		b.tokens.Store(0)
		b.used.Store(s.now() - c.idle*int64(budgetRefill/time.Second))
		s.use(b)
		if got := b.tokens.Load(); got != c.want {
			t.Errorf("Burst 1.5, idle %d×%v: %v retries, want %v", c.idle, budgetRefill, float64(got)/budgetUnit, float64(c.want)/budgetUnit)
		}
	}
}
