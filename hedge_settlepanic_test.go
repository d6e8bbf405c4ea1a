package resilient

import (
	"context"
	"io"
	"net/http"
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
// and the run's lock goes with it; the caller never gets the winner's
// answer, which is closed, and so is the answer of the other copy, whether
// it had ended (closed by settle) or was still in flight (closed as it
// ends). Before, settle closed the losers' answers holding the run's lock
// without releasing it on a panic: a copy still in flight blocked on it
// for good as it ended, its goroutine and its response (its connection)
// leaked, and the call's Report counted no copy; once the lock was
// released (7b28c6b), the winner's answer and an ended copy's were still
// left open.
func TestHedgingLoserClosePanicFreesTheRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		copy2 time.Duration // how long copy 2, sent at 200ms, takes
	}{
		{"other copy ended", 60 * time.Millisecond},      // at 260ms, before the winner
		{"other copy in flight", 200 * time.Millisecond}, // at 400ms, deaf to its cancel
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				synctest.Test(t, func(t *testing.T) {
					winner, other := newTrackedBody("winner"), newTrackedBody("other")
					rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
						switch i {
						case 0: // the attempt itself: wins at 300ms
							time.Sleep(300 * time.Millisecond)
							return &http.Response{StatusCode: 200, Body: winner, Request: req}, nil
						case 1: // copy 1, at 100ms: fails at 250ms, its body panics when closed
							time.Sleep(150 * time.Millisecond)
							return &http.Response{StatusCode: 500, Body: panicCloseBody{}, Request: req}, nil
						}
						time.Sleep(tc.copy2)
						return &http.Response{StatusCode: 500, Body: other, Request: req}, nil
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
					if !winner.isClosed() {
						t.Error("the winner's answer, which the caller never got, was never closed")
					}
					if !other.isClosed() {
						t.Error("the answer of the other copy that lost was never closed")
					}
				})
			}()
			select {
			case <-ended:
			case <-time.After(30 * time.Second): // real time: a bound on a hang, not a speed
				t.Fatal("the copy still in flight blocked for good on the run's lock, left held by the panic")
			}
		})
	}
}
