package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestRetryBudgetThrottledCostNeedsTheServersWait: a retry costs
// ThrottledCost only when the server set its wait (a Retry-After at least
// the backoff's base); a 429 without a wait, with "Retry-After: 0" or with
// a wait shorter than the backoff's base, which the retry raises to it,
// paces nothing but the backoff, and costs a whole retry. All cost
// ThrottledCost, and a host answering them to every call was retried ten
// times the Burst.
func TestRetryBudgetThrottledCostNeedsTheServersWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int // server attempts for 3 calls of at most 2 attempts, with a Burst of 1
	}{
		{"no wait", http.Header{}, 4},
		{"Retry-After: 0", http.Header{"Retry-After": {"0"}}, 4},
		{"Retry-After-Ms: 50, below the base", http.Header{"Retry-After-Ms": {"50"}}, 4},
		{"Retry-After: 1", http.Header{"Retry-After": {"1"}}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 429, header: tc.header}}}
				tr := New(s, WithoutBreaker(), WithoutRateLimit(), WithMaxRetries(1),
					WithRetryBudget(RetryBudget{Burst: 1}))
				for range 3 {
					resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				}
				if n := s.numCalls(); n != tc.want {
					t.Errorf("3 calls answered 429 with %v: %d server attempts, want %d", tc.header, n, tc.want)
				}
			})
		})
	}
}
