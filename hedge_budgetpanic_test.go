package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// copyPanicTracer is a Tracer whose StartAttempt panics for a hedged copy,
// before the copy reaches the wire.
type copyPanicTracer struct{}

func (copyPanicTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }

func (copyPanicTracer) StartAttempt(_ *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	if info.Hedge > 0 {
		panic("tracer exploded")
	}
	return nil, nil
}

func (copyPanicTracer) Attempt(context.Context, Attempt) {}
func (copyPanicTracer) EndCall(context.Context, *Report) {}

// TestHedgeCopyRefundPanicReachesTheCaller: a hedged copy that is never
// sent gives back what it paid to the fleet's budget, through the
// SharedBudget's Deposit, on the copy's own goroutine (a timer's); a
// Deposit that panics there goes to the caller, as every panic of the
// caller's code on a copy's goroutine does (see hedgeRun.panicked), and
// the process lives on. Before, the copy refused by the rate limiter's pace
// gave back twice, the second time in its deferred recovery: Deposit's
// second panic escaped the timer's goroutine and ended the process; so did
// Deposit's panic as a copy whose Tracer panicked before it was sent gave
// back what it paid.
func TestHedgeCopyRefundPanicReachesTheCaller(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string // the panic the caller gets: the copy's first
	}{
		// The pace has one token, which the attempt takes: the copy is
		// refused at once, unsent, and gives back what it paid.
		{"refused by the pace", []Option{WithRateLimit(1, 1)}, "store exploded"},
		// The copy panics before it is sent, and gives back what it
		// paid as it goes to the caller.
		{"its Tracer panicked", []Option{WithTracer(copyPanicTracer{})}, "tracer exploded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					select {
					case <-time.After(time.Second): // slow: a copy is launched
					case <-req.Context().Done():
						return nil, context.Cause(req.Context())
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				opts := append([]Option{WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}),
					WithQuotaStore(&explodingFleet{in: "Deposit"})}, tc.opts...)
				tr := New(base, opts...)
				req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
				start := time.Now()
				p := mustPanic(t, "no panic reached the caller", func() {
					if resp, err := tr.RoundTrip(req); err == nil {
						resp.Body.Close()
					}
				})
				if p != tc.want || time.Since(start) >= time.Second {
					t.Errorf("the caller got the panic %v after %v, want %q from the copy, before the attempt answers (1s)", p, time.Since(start), tc.want)
				}
				synctest.Wait()
			})
		})
	}
}
