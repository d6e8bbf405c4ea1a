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

// TestRetryBudgetDroppedWhileHeld: a call that holds its host's budget
// when a full table drops it (full again by the host's answers, as a new
// one is) pays its next retries to the host's budget in the table, with
// the host's other calls: else the host has two budgets at once, the
// dropped one spent by the calls that held it and a new one by its next
// calls, and its outage makes twice the retries that Burst bounds.
func TestRetryBudgetDroppedWhileHeld(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"address", nil},
		// A budget keyed by BreakerSettings.Key is looked up again by it.
		{"custom key", []Option{WithBreaker(BreakerSettings{Key: func(r *http.Request) string { return "tenant " + r.URL.Host }})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const url = "http://api.test/"
				var down atomic.Bool
				var attempts atomic.Int64 // to api.test
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					attempts.Add(1)
					status := http.StatusOK
					if down.Load() {
						status = http.StatusServiceUnavailable
					}
					return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				opts := append([]Option{WithBackoff(10*time.Second, 10*time.Second), WithMaxRetries(20), WithoutBreaker(), WithoutRateLimit()}, tc.opts...)
				tr := New(base, opts...)
				down.Store(true)
				var wg sync.WaitGroup
				wg.Go(func() {
					resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, url, nil))
					if err == nil {
						resp.Body.Close()
					}
				})
				synctest.Wait() // its first attempt failed: it paid a retry and waits its backoff
				down.Store(false)
				for range 5 {
					get(t, tr, url) // a retry's worth of answers: the budget is full again
				}
				fillBudgets(t, tr.budgets, "h", maxBudgets) // the full table's sweeps drop full budgets
				down.Store(true)
				const calls = 10
				for range calls {
					get(t, tr, url)
				}
				wg.Wait()
				retries := attempts.Load() - (1 + 5 + calls)
				if bound := DefaultRetryBudgetBurst + DefaultRetryBudgetRatio*5; float64(retries) > bound {
					t.Errorf("an outage of a host whose full budget a full table dropped while a call held it: %d retries, want at most Burst + Ratio×answers, %v", retries, bound)
				}
			})
		})
	}
}

// TestHedgeBudgetDroppedWhileHeld: the copies of calls that hold their
// host's budget when a full table drops it (full, its hedge allowance
// too, as a new one is) are paid from the host's budget in the table,
// with the copies of the host's other calls: else the host gets the
// copies of two hedge allowances at once, and a slow spell of it twice
// the copies that hedgeBurst bounds.
func TestHedgeBudgetDroppedWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const url = "http://api.test/"
		var requests atomic.Int64 // to api.test
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			requests.Add(1)
			select { // slow: every attempt gets its copy
			case <-time.After(time.Second):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithHedging(Hedging{Delay: 100 * time.Millisecond}), WithoutBreaker(), WithoutRateLimit())
		call := func() {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, url, nil))
			if err != nil {
				t.Errorf("GET %s: %v", url, err)
				return
			}
			resp.Body.Close()
		}
		const calls = hedgeBurst // each batch: what the allowance holds
		var wg sync.WaitGroup
		for range calls {
			wg.Go(call)
		}
		synctest.Wait()                             // sent, waiting for the hedging delay: they hold the budget
		fillBudgets(t, tr.budgets, "h", maxBudgets) // the full table's sweeps drop full budgets
		for range calls {
			wg.Go(call)
		}
		wg.Wait()
		copies := requests.Load() - 2*calls
		if bound := hedgeBurst + hedgeShare*2*calls; float64(copies) > bound {
			t.Errorf("a slow spell of a host whose full budget a full table dropped while calls held it: %d copies, want at most hedgeBurst + hedgeShare×calls, %v", copies, bound)
		}
	})
}
