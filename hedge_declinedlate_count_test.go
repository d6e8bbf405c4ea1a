package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgeDeclinedAfterDecisionCounted: a hedged copy still in the base
// when its attempt is decided is counted as sent then (see Report.Hedges);
// should the base decline it after (http.ErrSkipAltProtocol), it gives
// back what it paid, but stays counted, for the call has returned.
func TestHedgeDeclinedAfterDecisionCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked, declined atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if asked.Add(1) > 1 {
				// The copy: declined only once the attempt answered.
				time.Sleep(20 * time.Millisecond)
				declined.Add(1)
				return nil, http.ErrSkipAltProtocol
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1}))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://api.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if declined.Load() != 1 {
			t.Fatalf("the base declined %d copies, want 1", declined.Load())
		}
		if rep.Hedges != 1 || rep.Attempts != 2 {
			t.Errorf("Report.Hedges %d, Attempts %d; want 1 and 2: the copy was in the base when the attempt was decided (see Report.Hedges)", rep.Hedges, rep.Attempts)
		}
		hs, err := tr.HostState(req)
		if err != nil {
			t.Fatal(err)
		}
		if hs.RetryBudget != 10 {
			t.Errorf("RetryBudget %v, want 10: the copy the base declined gives back what it paid", hs.RetryBudget)
		}
	})
}
