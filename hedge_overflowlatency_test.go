package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingOverflowHostsShareNoLatencies: hosts beyond a full table of
// retry budgets share one budget (see maxBudgets), not one host's
// latencies: a host that never answered gets no copy, whatever another
// host beyond the table answered (Hedging: no copy is sent before the
// host has answered 20 times), where the shared histogram's 2ms, of a
// fast host, would copy every call of a host that takes 100ms, a second
// request a plain client never sends.
func TestHedgingOverflowHostsShareNoLatencies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(i int) time.Duration {
			if i < minHedgeSamples {
				return 0 // fast.test
			}
			return 100 * time.Millisecond // slow.test
		}}
		tr := New(rt, WithHedging(Hedging{}))
		for _, b := range fillBudgets(t, tr.budgets, "h", maxBudgets) {
			tr.budgets.withdraw(b, false) // recently used, not full: kept
		}
		if tr.budgets.get(newRequest(t, context.Background(), http.MethodGet, "http://fast.test/", nil)) != &tr.budgets.overflow {
			t.Fatal("fast.test did not get the overflow budget")
		}
		for range minHedgeSamples {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://fast.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		var r Report
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "http://slow.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if r.Hedges != 0 || rt.count() != minHedgeSamples+1 {
			t.Errorf("first call of slow.test, beyond the table: %d copies (%d requests in all); want none: slow.test never answered", r.Hedges, rt.count())
		}
	})
}
