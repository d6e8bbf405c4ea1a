package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// lateObserver returns an observer that, on attempt n, sleeps until what
// is left before the deadline of ctx is too little for the retry decided
// after it (Retry-After: 1): the retry loop then gives the retry up after
// the observers (see run).
func lateObserver(ctx context.Context, n int, also func(Attempt)) func(Attempt) {
	return func(a Attempt) {
		if also != nil {
			also(a)
		}
		if a.Number == n {
			d, _ := ctx.Deadline()
			time.Sleep(time.Until(d) - 500*time.Millisecond)
		}
	}
}

// TestLateObserverRetryEndsCleanly: a retry decided after attempt 2 (a 503
// with Retry-After: 1), given up after its observer took the time it
// needed, ends the call as a retry given up before the observers does:
// the 503 of attempt 2 returned, readable, that of attempt 1 closed, the
// body made for the retry closed, the retry's cost given back to the
// host's retry budget once, and the Report saying why (StopDeadline).
func TestLateObserverRetryEndsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{
			{status: 503, header: http.Header{"Retry-After": {"1"}}, body: "first"},
			{status: 503, header: http.Header{"Retry-After": {"1"}}, body: "second"},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var tr *Transport
		var afterFirst atomic.Int64 // the budget's balance once the first retry was paid
		budgetNow := func() int64 {
			return tr.budgets.get(newRequest(t, context.Background(), "GET", "http://api.test/", nil)).tokens.Load()
		}
		tr = New(s, WithMaxRetries(3), WithoutRateLimit(), WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 10}),
			WithObserver(lateObserver(ctx, 2, func(a Attempt) {
				if a.Number == 1 {
					afterFirst.Store(budgetNow())
				}
			})))
		var mu sync.Mutex
		var made []*trackedBody
		req := newRequest(t, ctx, "PUT", "http://api.test/v1/items/1", bytes.NewReader([]byte("payload")))
		req.GetBody = func() (io.ReadCloser, error) {
			b := newTrackedBody("payload")
			mu.Lock()
			made = append(made, b)
			mu.Unlock()
			return b, nil
		}
		var rep Report
		resp, err := tr.RoundTrip(req.WithContext(WithReport(ctx, &rep)))
		if err != nil {
			t.Fatalf("RoundTrip: err = %v; want the 503 of attempt 2", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || string(got) != "second" || s.numCalls() != 2 {
			t.Errorf("status %d, body %q after %d attempts; want 503 \"second\" after 2", resp.StatusCode, got, s.numCalls())
		}
		if !s.body(0).isClosed() {
			t.Errorf("the 503 of attempt 1, retried past, was left open")
		}
		mu.Lock()
		for i, b := range made {
			if !b.isClosed() {
				t.Errorf("body %d made by GetBody left open", i)
			}
		}
		mu.Unlock()
		if got, want := budgetNow(), afterFirst.Load(); got != want {
			t.Errorf("retry budget after the call = %d, want %d (the retry given up gives back what it paid, once)", got, want)
		}
		if rep.StopReason != StopDeadline || rep.Attempts != 2 || rep.StatusCode != 503 {
			t.Errorf("Report: stop %q, %d attempts, status %d; want %q, 2, 503", rep.StopReason, rep.Attempts, rep.StatusCode, StopDeadline)
		}
	})
}

// TestLateObserverHedgedRetryEndsCleanly: the same after a hedged attempt:
// the response returned readable, every other one closed, and the budget
// spent as much as by a call whose retry decide itself gave up for the
// deadline (the hedged copy's cost, not the retry's).
func TestLateObserverHedgedRetryEndsCleanly(t *testing.T) {
	run := func(t *testing.T, late bool) (spent int64, rep Report) {
		var mu sync.Mutex
		var bodies []*trackedBody
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return nil, context.Cause(r.Context())
			}
			b := newTrackedBody("busy")
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
			return &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"1"}}, Body: b, Request: r, ContentLength: 4}, nil
		})
		timeout := 30 * time.Second
		if !late {
			timeout = time.Second // decide gives the retry up
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var tr *Transport
		budgetNow := func() int64 {
			return tr.budgets.get(newRequest(t, context.Background(), "GET", "http://api.test/", nil)).tokens.Load()
		}
		obs := func(Attempt) {}
		if late {
			obs = lateObserver(ctx, 1, nil)
		}
		tr = New(base, WithMaxRetries(3), WithoutRateLimit(), WithoutBreaker(), WithRetryBudget(RetryBudget{Burst: 10}),
			WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithObserver(obs))
		before := budgetNow()
		resp, err := tr.RoundTrip(newRequest(t, WithReport(ctx, &rep), "GET", "http://api.test/v1/items", nil))
		if err != nil {
			t.Fatalf("late %v: RoundTrip: err = %v; want the 503", late, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		synctest.Wait()
		if resp.StatusCode != 503 || string(got) != "busy" {
			t.Errorf("late %v: status %d, body %q; want 503 \"busy\"", late, resp.StatusCode, got)
		}
		mu.Lock()
		for i, b := range bodies {
			if !b.isClosed() {
				t.Errorf("late %v: response body %d left open", late, i)
			}
		}
		mu.Unlock()
		return before - budgetNow(), rep
	}
	synctest.Test(t, func(t *testing.T) {
		want, wantRep := run(t, false)
		got, rep := run(t, true)
		if got != want {
			t.Errorf("retry budget spent by the call = %d, want %d, as when decide gives the retry up", got, want)
		}
		if rep.StopReason != StopDeadline || rep.Hedges != wantRep.Hedges || rep.Hedges == 0 || rep.Outcome != wantRep.Outcome {
			t.Errorf("Report: stop %q, %d hedges, outcome %q; want %q, %d, %q", rep.StopReason, rep.Hedges, rep.Outcome, StopDeadline, wantRep.Hedges, wantRep.Outcome)
		}
	})
}

// TestLateObserverRetryClosesCapturedBody: a body without GetBody,
// captured for the retry given up after the observer, is closed when the
// call returns the 503, as the caller's body is on every path.
func TestLateObserverRetryClosesCapturedBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503, header: http.Header{"Retry-After": {"1"}}, body: "busy"}}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tr := New(s, WithMaxRetries(3), WithoutRateLimit(), WithoutBreaker(), WithObserver(lateObserver(ctx, 1, nil)))
		body := newTrackedBody("payload")
		resp, err := tr.RoundTrip(newRequest(t, ctx, "PUT", "http://api.test/v1/items/1", body))
		if err != nil {
			t.Fatalf("RoundTrip: err = %v; want the 503", err)
		}
		resp.Body.Close()
		synctest.Wait()
		if resp.StatusCode != 503 || s.numCalls() != 1 || !body.isClosed() {
			t.Errorf("status %d after %d attempts, caller's body closed: %v; want 503 after 1, closed", resp.StatusCode, s.numCalls(), body.isClosed())
		}
	})
}
