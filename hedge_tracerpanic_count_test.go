package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgeCopyTracerPanicNotCounted: a hedged copy whose Tracer's
// StartAttempt panics never reaches the base, and gives back what it paid
// (see hedge_budgetpanic_test.go): it is no hedge nor attempt, as
// Report.Hedges says of a copy that never reached the base. Before, it was
// numbered as it passed the classifier, and the Report of the call its
// panic went through counted it, Hedges 1 and Attempts 2, for one request
// sent; and so did resilientotel's resilient.hedges and
// resilient.client.hedges, with no resilient.hedge event.
func TestHedgeCopyTracerPanicNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			select {
			case <-time.After(time.Second): // slow: a copy is launched
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithTracer(copyPanicTracer{}))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://api.test/", nil)
		p := mustPanic(t, "no panic reached the caller", func() {
			if resp, err := tr.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		})
		synctest.Wait()
		if p != "tracer exploded" {
			t.Fatalf("the caller got the panic %v, want the copy's Tracer's", p)
		}
		if rep.Hedges != 0 || rep.Attempts != int(hits.Load()) {
			t.Errorf("Report.Hedges %d, Attempts %d; want 0 and %d: the copy whose Tracer panicked never reached the base", rep.Hedges, rep.Attempts, hits.Load())
		}
	})
}
