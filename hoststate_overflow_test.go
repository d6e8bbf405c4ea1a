package resilient

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHostStateBudgetBeyondAFullTable: HostState reads the retries a host's
// budget holds as its next call finds them. When the table of budgets is
// full of hosts in an outage (budgets spent, used within the minute), a
// new host's calls share the overflow budget with every other host beyond
// the table: once that is spent, HostState reads none, as the host's next
// call is retried none; once the table's budgets are idle, a sweep makes
// room, and the host reads, and gets, a full budget of its own. Before, it
// read a full budget (2 retries) while its next call was retried none.
func TestHostStateBudgetBeyondAFullTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int64
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			sent.Add(1)
			return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}), fastRetries, WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 2}))
		for i := range maxBudgets {
			calls(t, tr, fmt.Sprintf("http://h%d.test/", i), 1) // spends the host's budget
		}
		calls(t, tr, "http://beyond0.test/", 1) // spends the overflow budget

		check := func(host string, want float64) {
			t.Helper()
			st, err := tr.HostState(newRequest(t, context.Background(), "GET", host, nil))
			if err != nil {
				t.Fatal(err)
			}
			before := sent.Load()
			calls(t, tr, host, 1)
			if retried := float64(sent.Load() - before - 1); st.RetryBudget != want || retried != want {
				t.Errorf("%s: HostState read %v retries, its next call was retried %v times; want %v", host, st.RetryBudget, retried, want)
			}
		}
		check("http://beyond1.test/", 0)
		time.Sleep(budgetIdle + 2*time.Second) // the table's budgets are idle
		check("http://beyond2.test/", 2)
	})
}
