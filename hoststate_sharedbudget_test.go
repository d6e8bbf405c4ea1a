package resilient

import "testing"

// Tokens makes memBudget a SharedBudgetReader.
func (b *memBudget) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}

// TestHostStateSharedBudget: HostState.RetryBudget of a host whose budget
// is shared through a BudgetStore reads what the shared budget says it
// holds when it can tell (a SharedBudgetReader): after an outage of 3
// calls spent 3 retries of 10, 7. It read -1 for every host of a
// Transport given a BudgetStore (redisquota's Store), the fleet's count
// being the store's; it stays -1 for a store that cannot tell, and for a
// host the Transport has not called yet (the fleet may have spent its
// budget).
func TestHostStateSharedBudget(t *testing.T) {
	rt := &switchRT{}
	rt.status.Store(500)
	tr := New(rt, fastRetries, WithoutBreaker(), WithMaxRetries(1), WithQuotaStore(new(memFleet)))
	if got := hostState(t, tr, "http://api.test/").RetryBudget; got != -1 {
		t.Errorf("a host not called yet, its budget the fleet's: RetryBudget %v, want -1", got)
	}
	calls(t, tr, "http://api.test/", 3)
	if got := hostState(t, tr, "http://api.test/").RetryBudget; got != DefaultRetryBudgetBurst-3 {
		t.Errorf("after 3 retries from the fleet's budget: RetryBudget %v, want %v", got, DefaultRetryBudgetBurst-3)
	}
}
