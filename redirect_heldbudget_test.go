package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestRedirectHeldHopBudgetSpent: a redirect the call retried (a
// Classifier that makes a 302 Transient, as the README allows for a 202
// "come back later") and returned once the retry after it was cut by the
// call's budget leaves its hop what the call left of the budget: nothing.
// The hop fails at once with the budget's timeout, before any attempt, as
// the hop of a redirect returned at once does (TestRedirectHopBudgetSpent).
// Before, the redirect returned held from an earlier attempt left nothing
// for its hop: the hop had a whole budget of its own, and tried /b for 20
// s more (4 requests), two budgets for one call.
func TestRedirectHeldHopBudgetSpent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hitsA, hitsB atomic.Int32
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			switch r.URL.Path {
			case "/a":
				if hitsA.Add(1) == 1 {
					http.Redirect(w, r, "/b", http.StatusFound)
					return
				}
				<-r.Context().Done() // the retry hangs until the budget cuts it
				return
			case "/b":
				hitsB.Add(1)
			}
			time.Sleep(5 * time.Second)
			w.WriteHeader(http.StatusServiceUnavailable)
		})))
		defer srv.Close()
		retryFound := func(resp *http.Response, _ *APIError, _ error, def Class) Class {
			if resp != nil && resp.StatusCode == http.StatusFound {
				return Transient
			}
			return def
		}
		tr := New(srv.Transport(), WithMaxElapsed(20*time.Second), WithMaxRetries(100),
			WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithoutBreaker(), WithoutRetryBudget(), WithClassifier(retryFound))
		cl := &http.Client{Transport: tr}
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), http.MethodGet, srv.URL+"/a", nil)
		start := time.Now()
		resp, err := cl.Do(req)
		elapsed := time.Since(start)
		if err == nil {
			resp.Body.Close()
			t.Errorf("status = %d, want the budget's timeout", resp.StatusCode)
		} else if !errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want it to wrap ErrAttemptTimeout and context.DeadlineExceeded", err)
		}
		if got, want := hitsA.Load(), int32(2); got != want {
			t.Errorf("requests to /a = %v, want %v", got, want)
		}
		if got := hitsB.Load(); got != 0 {
			t.Errorf("requests to /b = %v, want 0 (the budget was spent on /a)", got)
		}
		if elapsed > 20*time.Second {
			t.Errorf("call took %v, want at most %v (one WithMaxElapsed)", elapsed, 20*time.Second)
		}
		if rep.Redirects != 1 || rep.Attempts != 2 || rep.StopReason != StopDeadline {
			t.Errorf("Report = %+v, want 1 redirect, 2 attempts, stop reason deadline", rep)
		}
		synctest.Wait()
	})
}
