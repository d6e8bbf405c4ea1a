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
		tr := New(base, WithBackoff(10*time.Second, 10*time.Second), WithMaxRetries(20), WithoutBreaker(), WithoutRateLimit())
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
}
