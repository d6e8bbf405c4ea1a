package resilient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxElapsedSpentLeftNothingSendsNothing: a call whose budget
// WithMaxElapsedSpent spent in all (the time a layer above spent before
// handing it over was the call's whole budget, or more) fails before its
// first attempt, as a hop of a redirect left nothing does: no layer of
// the chain sees it (the host, its breaker, its rate limiter), a write
// included, whose attempt cut at once could reach the server with its
// outcome unknown. Its error is the budget's timeout and its Report says
// so (StopDeadline). Until 2026-12-06 the call had a budget of 1ns, and
// sent an attempt cut when that nanosecond passed.
func TestMaxElapsedSpentLeftNothingSendsNothing(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, spent := range []time.Duration{DefaultMaxElapsed, time.Hour, time.Duration(1<<63 - 1)} {
			t.Run(method+"/"+spent.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var sent int
					hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
						sent++
						<-r.Context().Done()
						return nil, r.Context().Err()
					})
					tr := New(hang)
					var rep Report
					ctx := WithCallOptions(WithReport(context.Background(), &rep), WithMaxElapsedSpent(spent))
					var body *strings.Reader
					if method == http.MethodPost {
						body = strings.NewReader(`{"a":1}`)
					}
					req := newRequest(t, ctx, method, "http://api.test/v1/orders", nil)
					if body != nil {
						req = newRequest(t, ctx, method, "http://api.test/v1/orders", body)
					}
					began := time.Now()
					resp, err := tr.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
						t.Fatal("the call succeeded, want its budget's timeout")
					}
					if sent != 0 {
						t.Errorf("attempts sent = %d after %v, want 0: the budget was spent before the call", sent, time.Since(began))
					}
					var ne net.Error
					if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAttemptTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
						t.Errorf("err = %v, want the budget's timeout (context.DeadlineExceeded, ErrAttemptTimeout, Timeout())", err)
					}
					if lostBelow(err) {
						t.Errorf("err = %v, want no write that may have been processed: nothing was sent", err)
					}
					if rep.StopReason != StopDeadline {
						t.Errorf("Report = %+v, want StopDeadline", rep)
					}
				})
			})
		}
	}
}
