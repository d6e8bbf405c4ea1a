package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// declinedRetryBudget sends req through a Transport whose base answers the
// first attempt with a 503 and declines the retry
// (http.ErrSkipAltProtocol), and returns what the host's retry budget
// holds then.
func declinedRetryBudget(t *testing.T, req *http.Request) float64 {
	t.Helper()
	var asked atomic.Int32
	alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if asked.Add(1) == 1 {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}
		return nil, http.ErrSkipAltProtocol
	})
	tr := New(alt, WithoutBreaker())
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatalf("RoundTrip error %v; want the 503", err)
	}
	resp.Body.Close()
	if n := asked.Load(); n != 2 {
		t.Fatalf("the base was asked %d times, want 2", n)
	}
	hs, err := tr.HostState(req)
	if err != nil {
		t.Fatal(err)
	}
	return hs.RetryBudget
}

// TestAltProtocolDeclinedInvalidRetryGivesBack: a retry the base declines
// was sent by no one, and gives back to the host's retry budget what it
// paid, also when its request has a header net/http refuses to send (the
// caller's mistake the classifier makes of the decline: see requestFault),
// which counts against nothing either.
func TestAltProtocolDeclinedInvalidRetryGivesBack(t *testing.T) {
	var want, got float64
	synctest.Test(t, func(t *testing.T) {
		want = declinedRetryBudget(t, newRequest(t, context.Background(), "GET", "http://a.test/", nil))
	})
	synctest.Test(t, func(t *testing.T) {
		got = declinedRetryBudget(t, declinedInvalidRequest(t, context.Background()))
	})
	if got != want {
		t.Errorf("RetryBudget %v after the declined retry of an invalid request, want %v as after a valid one's: the retry, never sent, gives back what it paid", got, want)
	}
}

// TestAltProtocolDeclinedInvalidRetryCostsNoTurn: a retry the base
// declines gives back the turn of the host's pace (WithRateLimit) it
// took, also when its request has a header net/http refuses to send: the
// host's next call goes at once, not a turn later.
func TestAltProtocolDeclinedInvalidRetryCostsNoTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the first call's retry
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithBackoff(time.Second, time.Second), WithMaxRetries(1), WithRateLimit(1, 1), WithObserver(obs.add))
		for i := range 2 {
			resp, err := roundTrip(t, tr, declinedInvalidRequest(t, context.Background()))
			if err != nil {
				t.Fatalf("call %d: %v; want the 503", i+1, err)
			}
			resp.Body.Close()
		}
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4", n)
		}
		if as := obs.all(); len(as) != 4 || as[2].LocalWait != 0 {
			t.Errorf("records %+v; want 4, the second call's first attempt sent at once (LocalWait 0): the declined retry kept its turn", as)
		}
	})
}

// TestAltProtocolDeclinedInvalidCopyGivesBack: a hedged copy the base
// declines gives back to the host's retry budget what it paid, also when
// its request has a header net/http refuses to send: the caller's mistake,
// sent by no one, counts against nothing (see callersMistake).
func TestAltProtocolDeclinedInvalidCopyGivesBack(t *testing.T) {
	budgetAfter := func(t *testing.T, invalid bool) float64 {
		var left float64
		synctest.Test(t, func(t *testing.T) {
			var sent atomic.Int32
			tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}))
			req := newRequest(t, context.Background(), "GET", "http://a.test/", nil)
			if invalid {
				req = declinedInvalidRequest(t, context.Background())
			}
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("RoundTrip error %v; want the attempt's 200", err)
			}
			resp.Body.Close()
			hs, err := tr.HostState(req)
			if err != nil {
				t.Fatal(err)
			}
			left = hs.RetryBudget
		})
		return left
	}
	want := budgetAfter(t, false)
	if got := budgetAfter(t, true); got != want {
		t.Errorf("RetryBudget %v after the declined copy of an invalid request, want %v as after a valid one's: the copy, never sent, gives back what it paid", got, want)
	}
}
