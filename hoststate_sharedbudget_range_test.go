package resilient

import (
	"encoding/json"
	"math"
	"testing"
)

// TestHostStateSharedBudgetInRange: HostState.RetryBudget of a shared
// budget reads what its SharedBudgetReader's Tokens says, which is another
// hand's code: a NaN (a 0/0 of its own arithmetic) or an infinity read as
// such, RetryBudget NaN or +Inf, which no comparison of the caller's
// ("RetryBudget < 1") tells, and which a HostState encoded as JSON (a
// status page) refuses. A NaN cannot tell, -1, as for a budget that does
// not; any other value reads within [0, Burst], the most a member's view
// holds (each caps the balance at its own Burst).
func TestHostStateSharedBudgetInRange(t *testing.T) {
	for _, tc := range []struct {
		tokens, want float64
	}{
		{math.NaN(), -1},
		{math.Inf(1), DefaultRetryBudgetBurst},
		{1e300, DefaultRetryBudgetBurst},
		{math.Inf(-1), 0},
		{-3, 0},
		{4.5, 4.5},
	} {
		fleet := new(memFleet)
		rt := &switchRT{}
		rt.status.Store(200)
		tr := New(rt, fastRetries, WithoutBreaker(), WithQuotaStore(fleet))
		calls(t, tr, "http://api.test/", 1)
		b := fleet.budget(fleet.asked[0])
		b.mu.Lock()
		b.tokens = tc.tokens
		b.mu.Unlock()
		s := hostState(t, tr, "http://api.test/")
		if got := s.RetryBudget; got != tc.want {
			t.Errorf("Tokens %v: RetryBudget %v, want %v", tc.tokens, got, tc.want)
		}
		if _, err := json.Marshal(s); err != nil {
			t.Errorf("Tokens %v: the HostState does not encode: %v", tc.tokens, err)
		}
	}
}
