package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingLoserClosePanicClosesTheWinner: when the body of a copy that
// lost panics as settle closes it, the panic goes to the caller, who never
// gets the winner's answer: settle closes it (and the answers of the other
// copies that had ended), as it closes any answer the caller does not get.
// Before, the winner's answer, and its connection, were left open for good.
func TestHedgingLoserClosePanicClosesTheWinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		winner, other := newTrackedBody("winner"), newTrackedBody("other")
		var mu sync.Mutex
		n := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			switch i {
			case 0: // the attempt itself: wins at 300ms
				time.Sleep(300 * time.Millisecond)
				return &http.Response{StatusCode: 200, Body: winner, Request: req}, nil
			case 1: // copy 1, at 100ms: fails at 250ms, its body panics when closed
				time.Sleep(150 * time.Millisecond)
				return &http.Response{StatusCode: 500, Body: panicCloseBody{}, Request: req}, nil
			}
			// copy 2, at 200ms: fails at 260ms
			time.Sleep(60 * time.Millisecond)
			return &http.Response{StatusCode: 500, Body: other, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 100 * time.Millisecond, MaxHedges: 2}))
		p := func() (p any) {
			defer func() { p = recover() }()
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err == nil {
				resp.Body.Close()
			}
			return nil
		}()
		if p != "Close exploded" {
			t.Fatalf("RoundTrip panicked with %v, want the loser's Close panic", p)
		}
		synctest.Wait()
		if !winner.isClosed() {
			t.Error("the winner's answer, which the caller never got, was never closed")
		}
		if !other.isClosed() {
			t.Error("the answer of another copy that lost was never closed")
		}
	})
}
