package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgeDeclinedAttemptCopySent: the base declines a hedged attempt
// itself (http.ErrSkipAltProtocol) only after its copy was sent, and the
// copy fails after it may have reached the host: the attempt's decline
// says nothing of the host (nothing of it was sent), the copy's failure
// does. The call must not end with the bare sentinel, for which the
// http.Transport above sends the request once more, as if nothing had
// been, nor give back the budget of a retry that was sent.
func TestHedgeDeclinedAttemptCopySent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1:
				// The attempt itself: declined once its copy is sent.
				time.Sleep(15 * time.Millisecond)
				return nil, http.ErrSkipAltProtocol
			case 2:
				// The copy: sent, and its connection reset.
				time.Sleep(20 * time.Millisecond)
				return nil, errReset
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1}))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://api.test/", nil)
		resp, err := tr.RoundTrip(req)
		if errors.Is(err, http.ErrSkipAltProtocol) {
			t.Fatalf("RoundTrip: %v; Report.Attempts %d, Hedges %d; want the copy sent to decide the attempt, not its own decline", err, rep.Attempts, rep.Hedges)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if n := asked.Load(); n != 3 || rep.Hedges != 1 {
			t.Errorf("the base was asked %d times, Report.Hedges %d; want 3 and 1: the attempt declined, its copy reset, the retry answered", n, rep.Hedges)
		}
	})
}

// TestHedgeDeclinedAttemptNestedRefund: a Transport below that hedges
// (New(New(base))) and whose attempt the base declined after its copy was
// sent must not hand the Transport above the bare sentinel, which reads
// as a retry never sent: that retry would give back the budget it paid,
// and the call end with the error before it.
func TestHedgeDeclinedAttemptNestedRefund(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1, 2:
				// The outer's first attempt: the inner's two, reset.
				return nil, errReset
			case 3:
				// The outer's retry, the inner's attempt: declined
				// once its copy is sent.
				time.Sleep(15 * time.Millisecond)
				return nil, http.ErrSkipAltProtocol
			case 4:
				// Its copy: sent, and its connection reset.
				time.Sleep(20 * time.Millisecond)
				return nil, errReset
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		inner := New(base, WithoutBreaker(), WithMaxRetries(1), WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1}))
		outer := New(inner, WithoutBreaker(), WithoutHedging())
		req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
		resp, err := outer.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v; the base asked %d times", err, asked.Load())
		}
		resp.Body.Close()
		synctest.Wait()
		hs, err := outer.HostState(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || asked.Load() != 5 || hs.RetryBudget >= 10 {
			t.Errorf("status %d, the base asked %d times, outer RetryBudget %v; want 200, 5, and the outer's retries paid: the inner's copy was sent", resp.StatusCode, asked.Load(), hs.RetryBudget)
		}
	})
}
