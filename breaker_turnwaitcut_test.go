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
// on the wire (a host that answered, then hangs) still counts.
func TestBreakerBudgetCutAfterTurnWaitNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(_ int, req *http.Request) time.Duration {
			if req.URL.Host == "hung.test" && req.URL.Path == "/paced" {
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

		// A host that answered once, then hangs: an attempt that waited
		// 1s for its turn, then hung 9s on the wire until the budget cut
		// it, is counted (its queue took less of its time than the host
		// did), though the host answered the attempt before it.
		hung := New(srv, WithRateLimit(rate.Every(9*time.Second), 1), WithMaxRetries(0), WithMaxElapsed(10*time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}))
		if code, err := getIn(t, hung, context.Background(), "http://hung.test/first"); code != http.StatusOK || err != nil {
			t.Fatalf("the hung host's first call: %d, %v; want 200 in 2s", code, err)
		}
		time.Sleep(6 * time.Second) // its next turn 1s away
		start = time.Now()
		if _, err := getIn(t, hung, context.Background(), "http://hung.test/paced"); !errors.Is(err, ErrAttemptTimeout) || time.Since(start) != 10*time.Second {
			t.Fatalf("the hung host's paced call: %v after %v, want the budget's cut at 10s", err, time.Since(start))
		}
		if s := hung.BreakerState("http://hung.test/"); s != BreakerOpen {
			t.Errorf("breaker %v after a budget cut of an attempt that waited 1s for its turn and hung 9s, want open", s)
		}
		synctest.Wait()
	})
}
