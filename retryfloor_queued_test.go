package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryFloorNotShortenedBySlotWait: the least a retry needs left is a
// tenth of what the host took with the attempt before it, the time that
// attempt waited for a slot of its host (WithMaxInFlight) not included,
// and not taken off twice. The attempt's start is already moved on by its
// waits (see attemptState.start); until 2026-12-07 decide subtracted them
// again, and an attempt that waited 100s for a slot, then took the host
// 100s to answer, counted as one of no time: its retry went with 5s left
// (a tenth of 100s is 10s), and the budget cut it.
func TestRetryFloorNotShortenedBySlotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{
			latency: func(int, *http.Request) time.Duration { return 100 * time.Second },
			status: func(i int) int {
				if i == 1 {
					return http.StatusServiceUnavailable // the queued call's first attempt
				}
				return http.StatusOK
			},
		}
		tr := New(srv, WithMaxInFlight(1), WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
			WithoutRetryBudget())
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/first"); code != http.StatusOK || err != nil {
				t.Errorf("the first call: %d, %v; want 200", code, err)
			}
		})
		synctest.Wait()
		// 100s for the slot, 100s for the 503, 1s of backoff: 5s left.
		var rep Report
		ctx := WithCallOptions(WithReport(context.Background(), &rep), WithMaxElapsed(206*time.Second))
		code, err := getIn(t, tr, ctx, "http://api.test/queued")
		wg.Wait()
		srv.mu.Lock()
		arrivals := len(srv.arrivals)
		srv.mu.Unlock()
		if code != http.StatusServiceUnavailable || arrivals != 2 || rep.StopReason != StopDeadline {
			t.Errorf("the queued call: %d (%v), %d requests in all, stop reason %q; want 503, 2 (no retry with 5s left after an answer that took 100s), %q",
				code, err, arrivals, rep.StopReason, StopDeadline)
		}
	})
}
