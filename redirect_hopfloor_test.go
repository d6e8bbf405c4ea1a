package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRedirectHopNotHeldToTheAttemptTimeout: a hop of a redirect has no
// answer of its own to fall back on: refused before its first attempt, it
// fails the call with the budget's timeout. So it is refused only when the
// budget left it less than 1ms (TestRedirectHopBudgetSpent), as a first
// attempt is (TestFirstAttemptWithAlmostNoBudgetSendsNothing), not when
// it has less than a tenth of WithAttemptTimeout: a hop left 5.5s of a
// minute, with a one-minute attempt timeout, reaches /b, which answers in
// 5s, as a plain client's would. Until 2026-12-07 the call failed with the
// budget's timeout, sending /b nothing.
func TestRedirectHopNotHeldToTheAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hitsA, hitsB atomic.Int32
		var failing atomic.Bool // /b answers a 200 after 5s
		srv := budgetRedirectServer(t, 0, http.StatusFound, &hitsA, &hitsB, &failing)
		defer srv.Close()
		slowObserver := func(a Attempt) {
			if a.StatusCode == http.StatusFound {
				time.Sleep(54500 * time.Millisecond) // 5.5s of the minute left
			}
		}
		tr := New(srv.Transport(), WithMaxElapsed(time.Minute), WithAttemptTimeout(time.Minute),
			WithoutBreaker(), WithoutRetryBudget(), WithObserver(slowObserver))
		cl := &http.Client{Transport: tr}
		resp, err := cl.Do(newRequest(t, context.Background(), http.MethodGet, srv.URL+"/a", nil))
		status := 0
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		if status != http.StatusOK || hitsB.Load() != 1 {
			t.Errorf("a hop left 5.5s of its budget: status %d (%v), %d requests to /b; want 200 after 1, a plain client's answer", status, err, hitsB.Load())
		}
		synctest.Wait()
	})
}
