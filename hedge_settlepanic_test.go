package resilient

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// panicCloseBody is an empty response body whose Close panics: a base
// RoundTripper's (the caller's code) that breaks as its answer is closed.
type panicCloseBody struct{}

func (panicCloseBody) Read([]byte) (int, error) { return 0, io.EOF }
func (panicCloseBody) Close() error             { panic("Close exploded") }

// TestHedgingLoserClosePanicFreesTheRun: when the body of a copy that lost
// panics as the winner's settle closes it, the panic goes to the caller,
// and the run's lock goes with it: a copy still in flight then ends, and
// its answer is closed. Before, settle closed the losers' answers holding
// the run's lock without releasing it on a panic: the copy still in flight
// blocked on it for good as it ended, its goroutine and its response
// (its connection) leaked, and the call's Report counted no copy.
func TestHedgingLoserClosePanicFreesTheRun(t *testing.T) {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		synctest.Test(t, func(t *testing.T) {
			late := newTrackedBody("late")
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
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				case 1: // copy 1, at 100ms: fails at 250ms, its body panics when closed
					time.Sleep(150 * time.Millisecond)
					return &http.Response{StatusCode: 500, Body: panicCloseBody{}, Request: req}, nil
				}
				// copy 2, at 200ms: deaf to its cancel, answers at 400ms
				time.Sleep(200 * time.Millisecond)
				return &http.Response{StatusCode: 200, Body: late, Request: req}, nil
			})
			tr := New(rt, WithHedging(Hedging{Delay: 100 * time.Millisecond, MaxHedges: 2}))
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
				t.Errorf("RoundTrip panicked with %v, want the loser's Close panic", p)
			}
			if rep.Hedges != 2 {
				t.Errorf("Report.Hedges = %d after the panic, want the 2 copies sent", rep.Hedges)
			}
			time.Sleep(time.Second) // copy 2 answers meanwhile
			synctest.Wait()
			if !late.isClosed() {
				t.Error("the answer of the copy still in flight was never closed")
			}
		})
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second): // real time: a bound on a hang, not a speed
		t.Fatal("the copy still in flight blocked for good on the run's lock, left held by the panic")
	}
}
