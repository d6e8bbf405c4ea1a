package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// refundFleet is a memFleet whose budgets tell a give-back from an answer
// (SharedBudgetRefunder).
type refundFleet struct {
	memFleet
	mu      sync.Mutex
	budgets map[string]*refundBudget
}

// refundBudget is a memBudget that records its refunds apart.
type refundBudget struct {
	*memBudget
	mu      sync.Mutex
	refunds []float64
}

func (f *refundFleet) Budget(name string, b RetryBudget) SharedBudget {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.budgets == nil {
		f.budgets = make(map[string]*refundBudget)
	}
	rb := f.budgets[name]
	if rb == nil {
		rb = &refundBudget{memBudget: f.memFleet.Budget(name, b).(*memBudget)}
		f.budgets[name] = rb
	}
	return rb
}

func (b *refundBudget) Refund(tokens float64) {
	b.mu.Lock()
	b.refunds = append(b.refunds, tokens)
	b.mu.Unlock()
	b.memBudget.Deposit(tokens)
}

// TestBudgetStoreRefundsAGiveBack: a retry that is never sent (its call
// canceled during its backoff) gives back what it took through Refund,
// when the fleet's budget implements SharedBudgetRefunder, and not as a
// Deposit, which a store takes for an answer's.
func TestBudgetStoreRefundsAGiveBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := new(refundFleet)
		rt := &switchRT{}
		rt.status.Store(503)
		tr := New(rt, WithBackoff(time.Second, time.Second), WithoutBreaker(), WithQuotaStore(fleet))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/", nil)
		done := make(chan error, 1)
		go func() {
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		synctest.Wait() // the retry waits for its backoff
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("RoundTrip = %v, want context.Canceled", err)
		}
		rb := fleet.budgets["http://api.test:80"]
		if rb == nil {
			t.Fatalf("no shared budget named http://api.test:80; asked %q", fleet.asked)
		}
		tokens, deposits, withdraws := rb.state()
		rb.mu.Lock()
		refunds := slices.Clone(rb.refunds)
		rb.mu.Unlock()
		if !slices.Equal(withdraws, []float64{1}) || !slices.Equal(refunds, []float64{1}) || !slices.Equal(deposits, []float64{1}) {
			t.Errorf("withdraws %v, refunds %v, deposits %v; want [1], [1], [1] (the refund's own)", withdraws, refunds, deposits)
		}
		if tokens != DefaultRetryBudgetBurst {
			t.Errorf("tokens = %v, want %v", tokens, DefaultRetryBudgetBurst)
		}
	})
}
