package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingLosingAttemptClosePanicFreesTheRun: when the attempt itself
// loses to a copy, and the body of its answer, which came as the copy won
// (a base deaf to the cancel), panics as it is closed on the caller's
// goroutine, the panic goes to the caller, as a loser's does when settle
// closes it (TestHedgingLoserClosePanicFreesTheRun): the winner's answer,
// which the caller never gets, is closed, and the call's Report counts the
// copy sent. Before, the panic left the run as it was: the winner's answer
// (its connection) was never closed, and the Report counted no copy.
func TestHedgingLosingAttemptClosePanicFreesTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		winner := newTrackedBody("winner")
		rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
			if i == 0 { // the attempt itself: deaf to its cancel, answers at 300ms
				time.Sleep(300 * time.Millisecond)
				return &http.Response{StatusCode: 200, Body: panicCloseBody{}, Request: req}, nil
			}
			// Copy 1, sent at 100ms: wins at once.
			return &http.Response{StatusCode: 200, Body: winner, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 100 * time.Millisecond}))
		var rep Report
		p := func() (p any) {
			defer func() { p = recover() }()
			resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &rep), "GET", "http://api.test/", nil))
			if err == nil {
				resp.Body.Close()
			}
			return nil
		}()
		if p != "Close exploded" {
			t.Errorf("RoundTrip panicked with %v, want the losing attempt's Close panic", p)
		}
		synctest.Wait()
		if !winner.isClosed() {
			t.Error("the winning copy's answer, which the caller never got, was never closed")
		}
		if rep.Hedges != 1 {
			t.Errorf("Report.Hedges = %d after the panic, want the 1 copy sent", rep.Hedges)
		}
	})
}
