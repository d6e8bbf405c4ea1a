package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestFirstAttemptHeldToItsDeadlineIsNotSent: a call's first attempt that a
// layer of the chain holds (the host's pause after another call's 429, a
// slot of its host under WithMaxInFlight) until less than 1ms is left of
// the call's budget is refused there, as a wait that would pass the
// deadline is, and never reaches the host: sent, it would be cut at once,
// the host doing the work for nothing (a write's caller left with a
// timeout for a write the host may have processed). A retry is held to
// what it needs (see call.startBy); until 2026-12-07 the first attempt was
// held to the deadline itself, and sent with 0.5ms left.
func TestFirstAttemptHeldToItsDeadlineIsNotSent(t *testing.T) {
	t.Run("pause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithLatency(10*time.Millisecond),
				resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.RateLimited(5*time.Second)))
			defer srv.Close()
			tr := New(srv.Transport(), WithMaxRetries(0), withRand(func(int64) int64 { return 0 }))
			defer tr.CloseIdleConnections()
			if code, err := getIn(t, tr, context.Background(), srv.URL+"/v1/posts"); code != http.StatusTooManyRequests {
				t.Fatalf("the first call: %d, %v; want the scripted 429", code, err)
			}
			// The host's pause ends 0.5ms before the call's budget.
			ctx := WithCallOptions(context.Background(), WithMaxElapsed(5*time.Second+500*time.Microsecond))
			code, err := getIn(t, tr, ctx, srv.URL+"/v1/posts")
			synctest.Wait()
			if hits := srv.Stats().Requests; hits != 1 || !errors.Is(err, ErrRateLimited) {
				t.Errorf("a call held by the pause to 0.5ms before its budget's end: %d (%v), %d requests in all; want ErrRateLimited, 1", code, err, hits)
			}
		})
	})
	t.Run("slot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &flightRT{latency: func(int, *http.Request) time.Duration { return 10 * time.Second }}
			tr := New(srv, WithMaxInFlight(1), WithMaxRetries(0))
			var wg sync.WaitGroup
			wg.Go(func() {
				if code, err := getIn(t, tr, context.Background(), "http://api.test/first"); code != http.StatusOK {
					t.Errorf("the first call: %d, %v; want 200", code, err)
				}
			})
			synctest.Wait()
			// The slot comes free 0.5ms before the call's budget ends.
			ctx := WithCallOptions(context.Background(), WithMaxElapsed(10*time.Second+500*time.Microsecond))
			code, err := getIn(t, tr, ctx, "http://api.test/queued")
			wg.Wait()
			if seen := srv.seen(); len(seen) != 1 || !errors.Is(err, ErrTooManyInFlight) {
				t.Errorf("a call queued for a slot that comes free 0.5ms before its budget's end: %d (%v), requests %q; want ErrTooManyInFlight, only the first", code, err, seen)
			}
		})
	})
}
