package resilient

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// memFleet is a QuotaStore that also implements BudgetStore, in memory:
// the Transports that share it share their hosts' retry budgets, as the
// members of a fleet do through redisquota, without the lag of a sync.
type memFleet struct {
	memQuota

	bmu     sync.Mutex
	asked   []string      // names, in the order asked
	configs []RetryBudget // the settings each ask gave
	budgets map[string]*memBudget
}

// memBudget is one shared budget, in tokens, with what was asked of it.
type memBudget struct {
	mu        sync.Mutex
	tokens    float64
	burst     float64
	deposits  []float64
	withdraws []float64 // the amounts asked, held or not
}

func (m *memFleet) Budget(name string, b RetryBudget) SharedBudget {
	m.bmu.Lock()
	defer m.bmu.Unlock()
	m.asked = append(m.asked, name)
	m.configs = append(m.configs, b)
	if m.budgets == nil {
		m.budgets = make(map[string]*memBudget)
	}
	sb := m.budgets[name]
	if sb == nil {
		sb = &memBudget{tokens: b.Burst, burst: b.Burst}
		m.budgets[name] = sb
	}
	return sb
}

func (m *memFleet) budget(name string) *memBudget {
	m.bmu.Lock()
	defer m.bmu.Unlock()
	return m.budgets[name]
}

func (b *memBudget) Deposit(tokens float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deposits = append(b.deposits, tokens)
	b.tokens = min(b.tokens+tokens, b.burst)
}

func (b *memBudget) Withdraw(tokens float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.withdraws = append(b.withdraws, tokens)
	if b.tokens < tokens {
		return false
	}
	b.tokens -= tokens
	return true
}

func (b *memBudget) state() (tokens float64, deposits, withdraws []float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens, slices.Clone(b.deposits), slices.Clone(b.withdraws)
}

// switchRT answers every attempt with its current status, and counts them.
type switchRT struct {
	status   atomic.Int32
	header   http.Header // of every answer; read only
	attempts atomic.Int64
}

func (s *switchRT) RoundTrip(req *http.Request) (*http.Response, error) {
	s.attempts.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: int(s.status.Load()), Header: s.header.Clone(), Body: http.NoBody, Request: req}, nil
}

// TestBudgetStoreSharedOutage: three Transports that share a BudgetStore
// spend one budget in an outage, Burst retries in all; with a QuotaStore
// that does not implement BudgetStore, each spends its own.
func TestBudgetStoreSharedOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store QuotaStore
		want  int64 // attempts for 3 × 100 calls
	}{
		{"shared", new(memFleet), 300 + DefaultRetryBudgetBurst},
		{"quota only", new(memQuota), 300 + 3*DefaultRetryBudgetBurst},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &switchRT{}
			rt.status.Store(500)
			for range 3 {
				tr := New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(tc.store))
				calls(t, tr, "http://api.test/", 100)
			}
			if n := rt.attempts.Load(); n != tc.want {
				t.Errorf("%d attempts for 300 calls, want %d", n, tc.want)
			}
		})
	}
}

// TestBudgetStoreRefill: the answers one Transport gets refill the budget
// another spends: after an outage spent it, 50 answers to A (a fifth of a
// retry each) pay for 10 retries of B.
func TestBudgetStoreRefill(t *testing.T) {
	fleet := new(memFleet)
	rt := &switchRT{}
	a := New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet))
	b := New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet))
	rt.status.Store(503)
	calls(t, b, "http://api.test/", 20) // spends the budget: 10 retries
	sb := fleet.budget("http://api.test:80")
	if sb == nil {
		t.Fatalf("no shared budget named http://api.test:80; asked %q", fleet.asked)
	}
	if tokens, _, _ := sb.state(); tokens != 0 {
		t.Fatalf("after an outage: %v tokens, want 0", tokens)
	}
	rt.status.Store(200)
	if ok := calls(t, a, "http://api.test/", 50); ok != 50 {
		t.Fatalf("%d of 50 calls succeeded", ok)
	}
	tokens, deposits, _ := sb.state()
	if len(deposits) != 50 || deposits[0] != DefaultRetryBudgetRatio || tokens < 9.99 {
		t.Errorf("after 50 answers to A: %d deposits (first %v), %v tokens; want 50 of %v, about 10 tokens", len(deposits), deposits[:min(1, len(deposits))], tokens, DefaultRetryBudgetRatio)
	}
	rt.status.Store(503)
	before := rt.attempts.Load()
	calls(t, b, "http://api.test/", 1)
	if n := rt.attempts.Load() - before; n != 6 {
		t.Errorf("B's call made %d attempts after A refilled the budget, want 6 (5 retries)", n)
	}
}

// TestBudgetStoreNamesAndSettings: a budget is named by the breaker key of
// its host (every spelling of it one budget), or by BreakerSettings.Key;
// Budget receives the Transport's settings with their defaults, once per
// host; the costs withdrawn are 1 and ThrottledCost.
func TestBudgetStoreNamesAndSettings(t *testing.T) {
	// In fake time: the server asks for a wait of a second (a Retry-After
	// of 0 asks for none, and its retry costs 1).
	synctest.Test(t, func(t *testing.T) {
		fleet := new(memFleet)
		rt := &switchRT{header: http.Header{"Retry-After": {"1"}}}
		rt.status.Store(503)
		tr := New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet), WithMaxRetries(1))
		calls(t, tr, "http://API.test/", 1)
		calls(t, tr, "http://api.test:80/x", 1)
		calls(t, tr, "https://api.test/", 1)
		want := []string{"http://api.test:80", "https://api.test:443"}
		if !slices.Equal(fleet.asked, want) {
			t.Errorf("budgets asked %q, want %q", fleet.asked, want)
		}
		def := RetryBudget{Ratio: DefaultRetryBudgetRatio, Burst: DefaultRetryBudgetBurst, ThrottledCost: DefaultRetryBudgetThrottledCost}
		if fleet.configs[0] != def {
			t.Errorf("settings %+v, want the defaults %+v", fleet.configs[0], def)
		}
		if _, _, w := fleet.budget(want[0]).state(); !slices.Equal(w, []float64{DefaultRetryBudgetThrottledCost, DefaultRetryBudgetThrottledCost}) {
			t.Errorf("withdrawals for two 503s with Retry-After: %v, want ThrottledCost each", w)
		}

		fleet = new(memFleet)
		rt = &switchRT{}
		rt.status.Store(500)
		tr = New(rt, fastRetries, WithQuotaStore(fleet), WithMaxRetries(1),
			WithRetryBudget(RetryBudget{Burst: 3, Ratio: 0.5}),
			WithBreaker(BreakerSettings{Key: func(*http.Request) string { return "tenant-7" }}))
		calls(t, tr, "http://api.test/", 1)
		if !slices.Equal(fleet.asked, []string{"tenant-7"}) {
			t.Errorf("budgets asked %q, want the breaker's key", fleet.asked)
		}
		if got := fleet.configs[0]; got != (RetryBudget{Ratio: 0.5, Burst: 3, ThrottledCost: DefaultRetryBudgetThrottledCost}) {
			t.Errorf("settings %+v, want Burst 3, Ratio 0.5 and the default ThrottledCost", got)
		}
		if _, _, w := fleet.budget("tenant-7").state(); !slices.Equal(w, []float64{1}) {
			t.Errorf("withdrawals for a 500: %v, want [1]", w)
		}
	})
}

// TestBudgetStoreOff: without the retry budget, the store's budgets are
// never asked for, and the rate limiter being off does not stop sharing
// the budget.
func TestBudgetStoreOff(t *testing.T) {
	fleet := new(memFleet)
	rt := &switchRT{}
	rt.status.Store(500)
	calls(t, New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet), WithoutRetryBudget()), "http://api.test/", 2)
	if len(fleet.asked) != 0 || rt.attempts.Load() != 12 {
		t.Errorf("without a budget: asked %q, %d attempts; want none asked, 12 attempts", fleet.asked, rt.attempts.Load())
	}
	calls(t, New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet), WithoutRateLimit()), "http://api.test/", 2)
	if len(fleet.asked) != 1 {
		t.Errorf("without the rate limiter: asked %q, want the host's budget", fleet.asked)
	}
}

// TestBudgetStoreHedges: a hedge spends from the shared budget, and none is
// sent when the fleet's budget is spent.
func TestBudgetStoreHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := new(memFleet)
		var slow bool
		rt := &latencyRT{latency: func(i int) time.Duration {
			if slow && i%2 == 0 {
				return time.Second // a slow call's first attempt
			}
			return 10 * time.Millisecond
		}}
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithQuotaStore(fleet))
		get := func() {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			synctest.Wait()
		}
		slow = true
		get()
		sb := fleet.budget("http://api.test:80")
		want := DefaultRetryBudgetBurst - 1 + DefaultRetryBudgetRatio
		if tokens, _, w := sb.state(); rt.count() != 2 || !slices.Equal(w, []float64{1}) || tokens != want {
			t.Fatalf("hedged call: %d requests, withdrawals %v, %v tokens; want 2, [1], %v", rt.count(), w, tokens, want)
		}
		slow = false
		for range 20 { // fast calls: the host's hedge allowance refills
			get()
		}
		sb.mu.Lock()
		sb.tokens = 0 // the fleet spent it
		sb.mu.Unlock()
		slow = true
		n := rt.count()
		get()
		if _, _, w := sb.state(); rt.count() != n+1 || !slices.Equal(w, []float64{1, 1}) {
			t.Errorf("with the fleet's budget spent: %d requests for a slow call, withdrawals %v; want 1 (no copy), [1 1] (one refused)", rt.count()-n, w)
		}
	})
}
