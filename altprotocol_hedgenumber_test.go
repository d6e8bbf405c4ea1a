package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestAltProtocolSkipLateDeclinesLeaveNoGap: the first two hedged copies
// of an attempt both reach the base before either is declined (a base that
// declines late, the first after the second was numbered: its number is a
// gap while the second holds 2), then the third is sent, once both gave
// their numbers back: it is the only copy sent, hedge 1 of 1, as Hedging
// numbers the copies sent, not hedge 2 of 1 behind a number that no copy
// sent, nor any copy still in flight, has.
func TestAltProtocolSkipLateDeclinesLeaveNoGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the attempt, slow
				select {
				case <-time.After(100 * time.Millisecond):
				case <-r.Context().Done():
					return nil, context.Cause(r.Context())
				}
			case 2: // the first copy, at 10ms: declined at 25ms, once the second is numbered
				time.Sleep(15 * time.Millisecond)
				return nil, http.ErrSkipAltProtocol
			case 3: // the second copy, at 20ms: declined at 27ms, the first declined before it
				time.Sleep(7 * time.Millisecond)
				return nil, http.ErrSkipAltProtocol
			case 4: // the third copy, at 30ms: sent, answered at 35ms
				time.Sleep(5 * time.Millisecond)
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 3}), WithObserver(obs.add))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://a.test/", nil)
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := asked.Load(); n != 4 {
			t.Fatalf("the base was asked %d times, want 4", n)
		}
		if rep.Hedges != 1 {
			t.Errorf("Report.Hedges = %d, want 1", rep.Hedges)
		}
		if as := obs.all(); len(as) != 1 || as[0].Hedge != 1 || as[0].Hedges != 1 {
			t.Errorf("records %+v; want one answered by hedge 1 of 1", as)
		}
	})
}
