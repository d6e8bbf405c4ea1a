package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestBreakerBudgetCutAfterTurnWaitNotCounted checks that an attempt that
// waited for its turn of the host's pace (WithRateLimit, one request every
// 9s) behind a call the host answers in 2s, and is then cut by its call's
// budget (WithMaxElapsed 10s) after 1s on the wire, is not counted by the
// host's breaker, as one that waited as long for a slot of WithMaxInFlight
// is not (TestMaxInFlightBudgetCutAfterSlotWaitNotCounted): the 9s the
// pace took from it were the local queue's, not the host's, and the
// breaker must not open for a healthy host, refusing the next call. A
// budget cut of an attempt that waited for its turn less than it then had
// on the wire (a host that hangs) still counts.
func TestBreakerBudgetCutAfterTurnWaitNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(_ int, req *http.Request) time.Duration {
			if req.URL.Host == "hung.test" {
				return time.Hour
			}
			return 2 * time.Second
		}}
		tr := New(srv, WithRateLimit(rate.Every(9*time.Second), 1), WithMaxRetries(0), WithMaxElapsed(10*time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}))
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/first"); code != http.StatusOK || err != nil {
				t.Errorf("the first call: %d, %v; want 200", code, err)
			}
		})
		synctest.Wait()
		start := time.Now()
		_, err := getIn(t, tr, context.Background(), "http://api.test/paced")
		if !errors.Is(err, ErrAttemptTimeout) || time.Since(start) != 10*time.Second {
			t.Fatalf("the paced call: %v after %v; want the budget's cut at 10s", err, time.Since(start))
		}
		wg.Wait()
		if s := tr.BreakerState("http://api.test/"); s != BreakerClosed {
			t.Errorf("breaker %v after a budget cut of an attempt that waited 9s for its turn, want closed: the wait was the pace's, not the host's", s)
		}
		time.Sleep(9 * time.Second) // the next turn
		if code, err := getIn(t, tr, context.Background(), "http://api.test/next"); code != http.StatusOK || err != nil {
			t.Errorf("the next call: %d, %v; want 200", code, err)
		}

		// A host that hangs: its first attempt did not wait and is
		// counted; one that waited 1s for its turn and hung 9s is
		// counted too.
		wg.Go(func() { getIn(t, tr, context.Background(), "http://hung.test/first") })
		synctest.Wait()
		time.Sleep(8 * time.Second)
		if _, err := getIn(t, tr, context.Background(), "http://hung.test/paced"); !errors.Is(err, ErrAttemptTimeout) && !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("the hung host's paced call: %v, want the budget's cut or a refusal", err)
		}
		wg.Wait()
		if s := tr.BreakerState("http://hung.test/"); s != BreakerOpen {
			t.Errorf("breaker %v of a host that hangs, want open", s)
		}
		synctest.Wait()
	})
}
