package resilient

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// declineEndPanicTracer is a Tracer whose span of a hedged copy panics as
// it ends.
type declineEndPanicTracer struct{}

func (declineEndPanicTracer) StartCall(ctx context.Context, _ *http.Request) context.Context {
	return ctx
}

func (declineEndPanicTracer) StartAttempt(_ *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	if info.Hedge == 0 {
		return nil, nil
	}
	return nil, func(*http.Response, error) { panic("span end exploded") }
}

func (declineEndPanicTracer) Attempt(context.Context, Attempt) {}
func (declineEndPanicTracer) EndCall(context.Context, *Report) {}

// declineCopies returns a base that answers the attempt itself, slowly (a
// copy is launched), and declines every copy with http.ErrSkipAltProtocol;
// sent counts the requests it did not decline.
func declineCopies(sent *atomic.Int32) roundTripFunc {
	var asked atomic.Int32
	return func(req *http.Request) (*http.Response, error) {
		if asked.Add(1) > 1 {
			return nil, http.ErrSkipAltProtocol
		}
		sent.Add(1)
		select {
		case <-time.After(time.Second):
		case <-req.Context().Done():
			return nil, context.Cause(req.Context())
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
}

// checkDeclinedCopyPanic sends a GET through tr, whose copy the base
// declines and whose caller's code then panics with want on the copy's
// goroutine: the panic reaches the caller, and the Report counts no hedge,
// for the declined copy was never sent (see unwire).
func checkDeclinedCopyPanic(t *testing.T, tr http.RoundTripper, sent *atomic.Int32, want string) {
	var rep Report
	req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://api.test/", nil)
	p := mustPanic(t, "no panic reached the caller", func() {
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	})
	synctest.Wait()
	if p != want {
		t.Fatalf("the caller got the panic %v, want %q", p, want)
	}
	if rep.Hedges != 0 || rep.Attempts != int(sent.Load()) {
		t.Errorf("Report.Hedges %d, Attempts %d; want 0 and %d: the copy the base declined was never sent", rep.Hedges, rep.Attempts, sent.Load())
	}
}

// TestHedgeDeclinedCopyTracerEndPanicNotCounted: a hedged copy the base
// declines (http.ErrSkipAltProtocol) was never sent, and is no hedge (see
// Hedging), also when its Tracer's span panics as it ends, before the
// classifier above the Tracer saw the decline.
func TestHedgeDeclinedCopyTracerEndPanicNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithTracer(declineEndPanicTracer{}))
		checkDeclinedCopyPanic(t, tr, &sent, "span end exploded")
	})
}

// TestHedgeDeclinedCopyClassifierPanicNotCounted: so too when the
// Classifier panics on the decline, once the copy was classified but
// before launchCopy took its number back.
func TestHedgeDeclinedCopyClassifierPanicNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		cls := func(_ *http.Response, _ *APIError, err error, def Class) Class {
			if err == http.ErrSkipAltProtocol {
				panic("classifier exploded")
			}
			return def
		}
		tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithClassifier(cls))
		checkDeclinedCopyPanic(t, tr, &sent, "classifier exploded")
	})
}

// TestHedgeDeclinedCopyPanicGivesBack: a hedged copy the base declines
// gives back to the host's retry budget what it paid, as it does when
// nothing panics (see unsentHedge), also when the caller's code panics on
// its goroutine once the base declined it (its Tracer's span as it ends).
func TestHedgeDeclinedCopyPanicGivesBack(t *testing.T) {
	budgetAfter := func(t *testing.T, tracer Tracer) float64 {
		var left float64
		synctest.Test(t, func(t *testing.T) {
			var sent atomic.Int32
			tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithTracer(tracer))
			req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
			func() {
				defer func() { _ = recover() }()
				if resp, err := tr.RoundTrip(req); err == nil {
					resp.Body.Close()
				}
			}()
			synctest.Wait()
			hs, err := tr.HostState(req)
			if err != nil {
				t.Fatal(err)
			}
			left = hs.RetryBudget
		})
		return left
	}
	want := budgetAfter(t, quietEndTracer{})
	if got := budgetAfter(t, declineEndPanicTracer{}); got != want {
		t.Errorf("RetryBudget %v after the declined copy's span panicked, want %v as when it does not: the copy, never sent, gives back what it paid", got, want)
	}
}

// quietEndTracer is a Tracer whose span of a hedged copy ends quietly.
type quietEndTracer struct{ declineEndPanicTracer }

func (quietEndTracer) StartAttempt(*http.Request, AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return nil, func(*http.Response, error) {}
}

// TestHedgeDeclinedCopyPanicClosesBody: the body of a hedged copy the base
// declines, made by the caller's GetBody, is closed, as the classifier
// closes it when nothing panics, also when the copy's Tracer's span panics
// as it ends, before the classifier saw the decline: the base, which
// declined it, leaves it to the Transport above, which never sees a copy.
func TestHedgeDeclinedCopyPanicClosesBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithTracer(declineEndPanicTracer{}))
		var mu sync.Mutex
		var made []*trackedBody
		req := newRequest(t, context.Background(), "GET", "http://api.test/", newTrackedBody("q"))
		req.ContentLength = 1
		req.GetBody = func() (io.ReadCloser, error) {
			b := newTrackedBody("q")
			mu.Lock()
			made = append(made, b)
			mu.Unlock()
			return b, nil
		}
		mustPanic(t, "no panic reached the caller", func() {
			if resp, err := tr.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		})
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(made) == 0 {
			t.Fatal("GetBody was not called: no copy was made")
		}
		for i, b := range made {
			if !b.isClosed() {
				t.Errorf("body %d of %d made by GetBody was never closed", i+1, len(made))
			}
		}
	})
}

// TestHedgeDeclinedCopyRefundPanicUnwiresOnce: a hedged copy the base
// declines gives its number back, then what it paid, through a
// SharedBudget's Deposit that panics: the recovery of that panic takes
// no number back a second time, which would count -1 hedge.
func TestHedgeDeclinedCopyRefundPanicUnwiresOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		tr := New(declineCopies(&sent), WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}),
			WithQuotaStore(&explodingFleet{in: "Deposit"}), WithTracer(quietEndTracer{}))
		checkDeclinedCopyPanic(t, tr, &sent, "store exploded")
	})
}
