package resilient

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryBudgetConcurrentBurst: 1,000 calls at once to one host, with
// the defaults of RetryBudget, make no more retries than the Burst plus
// Ratio for each answer the host gave (a success: a deposit), whatever
// their interleaving: in a full outage (503), 10 retries in all; with a
// host answering half of its attempts (seeded), at most 10 + 0.2 per
// success; and with a 429 that asks for a wait of 2 s, at most Burst ÷
// ThrottledCost (100) retries.
func TestRetryBudgetConcurrentBurst(t *testing.T) {
	const calls = 1000
	for _, tc := range []struct {
		name   string
		p      float64 // the share of attempts that fail
		status int
		header http.Header
		perTok float64 // retries per token
	}{
		{"outage 503", 1, 503, nil, 1},
		{"half 503", 0.5, 503, nil, 1},
		{"outage 429 Retry-After: 2", 1, 429, http.Header{"Retry-After": {"2"}}, 1 / DefaultRetryBudgetThrottledCost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newRandomFaults(tc.p, 42)
				var successes atomic.Int64
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					resp, _ := f.RoundTrip(req)
					if resp.StatusCode == 200 {
						successes.Add(1)
						return resp, nil
					}
					resp.StatusCode = tc.status
					resp.Header = tc.header.Clone()
					return resp, nil
				})
				tr := New(rt, WithBackoff(time.Millisecond, 5*time.Millisecond), WithoutBreaker(), WithoutRateLimit())
				var wg sync.WaitGroup
				for range calls {
					wg.Go(func() {
						req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://api.test/", nil)
						if resp, err := tr.RoundTrip(req); err == nil {
							resp.Body.Close()
						}
					})
				}
				wg.Wait()
				retries := f.attempts.Load() - calls
				bound := (DefaultRetryBudgetBurst + DefaultRetryBudgetRatio*float64(successes.Load())) * tc.perTok
				t.Logf("%d retries for %d calls at once, %d successes; bound %.1f", retries, calls, successes.Load(), bound)
				if float64(retries) > bound+1e-9 {
					t.Errorf("%d retries for %d calls at once with %d successes, want at most %.1f (Burst + Ratio×successes, in retries)",
						retries, calls, successes.Load(), bound)
				}
				if tc.p == 1 && float64(retries) < bound-1e-9 {
					t.Errorf("%d retries in a full outage, want the whole budget, %.0f", retries, bound)
				}
			})
		})
	}
}
