package resilient

import (
	"net/http"
	"testing"
)

// TestRetryBudgetKeyRetrySpends: the retry under a new key of a call
// answered that an idempotency key is required is a retry like any, paid
// for from the host's budget: once an outage spent it, a host that answers
// every call so (and ignores the key it asked for, or asks it of reads)
// gets one attempt per call, as from a plain client. Unpaid, it got two per
// call for ever, whatever the budget held.
func TestRetryBudgetKeyRetrySpends(t *testing.T) {
	keyReq := rtStep{status: 400, body: `{"error":{"code":"bad_request","message":"An Idempotency-Key header is required."}}`}
	rt := &rtScript{steps: []rtStep{{status: 500}, {status: 500}, keyReq, keyReq, keyReq, keyReq, keyReq, keyReq}}
	tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker(), WithoutHedging(),
		WithRetryBudget(RetryBudget{Burst: 1, Ratio: 1e-6}))
	resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1/posts/1", nil))
	if err == nil {
		resp.Body.Close()
	}
	before := rt.numCalls() // 2: the budget's one retry spent
	for range 3 {
		resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1/posts/1", nil))
		if err == nil {
			resp.Body.Close()
		}
	}
	if got := rt.numCalls() - before; got > 3+1 {
		t.Errorf("3 reads answered 'key required' after the budget was spent: %d attempts, want at most 4", got)
	}
}
