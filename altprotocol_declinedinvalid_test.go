package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// declinedInvalidRequest returns a GET of a.test whose header net/http
// refuses to send (a control character in a value): what a base that
// declines it (http.ErrSkipAltProtocol) leaves is the caller's mistake,
// as the classifier wraps it (see requestFault).
func declinedInvalidRequest(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req := newRequest(t, ctx, "GET", "http://a.test/", nil)
	req.Header.Set("X-Bad", "a\x7fb")
	return req
}

// TestAltProtocolDeclinedInvalidRetry pins what a call gets when the base
// answers its first attempt with a 503 and declines the retry of a request
// with a header net/http refuses to send: the 503, the last response, after
// two attempts, as for a valid request: every layer reads the base's
// decline alike (see attemptState.declined), whatever the caller's
// mistake the classifier made of it (see requestFault).
func TestAltProtocolDeclinedInvalidRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			}
			return nil, http.ErrSkipAltProtocol
		})
		var obs collector[Attempt]
		tr := New(alt, WithObserver(obs.add))
		var rep Report
		resp, err := roundTrip(t, tr, declinedInvalidRequest(t, WithReport(context.Background(), &rep)))
		if err != nil {
			t.Fatalf("RoundTrip error %v; want the 503", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("the base was asked %d times, want 2", n)
		}
		if rep.Attempts != 2 || rep.Hedges != 0 {
			t.Errorf("Report.Attempts = %d, Hedges = %d; want 2, 0", rep.Attempts, rep.Hedges)
		}
		if as := obs.all(); len(as) != 2 {
			t.Errorf("%d records, want 2", len(as))
		}
	})
}

// TestAltProtocolDeclinedInvalidCopy pins what a hedged call of a request
// with a header net/http refuses to send gets when the base declines its
// copy while the attempt itself is answered: the attempt's 200. The
// copy's error becomes the caller's mistake (see requestFault), but the
// base declined it and nothing was sent: the copy takes its number back,
// as a valid request's declined copy does (see attemptState.declined),
// whatever the error the layers above read.
func TestAltProtocolDeclinedInvalidCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 { // the attempt, slow
				select {
				case <-time.After(100 * time.Millisecond):
				case <-r.Context().Done():
					return nil, context.Cause(r.Context())
				}
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			}
			return nil, http.ErrSkipAltProtocol
		})
		var obs collector[Attempt]
		tr := New(alt, WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1}), WithObserver(obs.add))
		var rep Report
		resp, err := roundTrip(t, tr, declinedInvalidRequest(t, WithReport(context.Background(), &rep)))
		if err != nil {
			t.Fatalf("RoundTrip error %v; want the attempt's 200", err)
		}
		resp.Body.Close()
		if n := asked.Load(); n != 2 {
			t.Errorf("the base was asked %d times, want 2", n)
		}
		if rep.Attempts != 1 || rep.Hedges != 0 {
			t.Errorf("Report.Attempts = %d, Hedges = %d; want 1, 0: the declined copy was never sent", rep.Attempts, rep.Hedges)
		}
		if as := obs.all(); len(as) != 1 || as[0].Hedge != 0 || as[0].Hedges != 0 || as[0].Err != nil {
			t.Errorf("records %+v; want one, the attempt's answer, of no hedge", as)
		}
	})
}

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
	declinedRetryCostsNoTurn(t, func(t *testing.T) *http.Request {
		return declinedInvalidRequest(t, context.Background())
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
