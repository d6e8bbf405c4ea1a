package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightBudgetCutAfterSlotWaitNotCounted checks that an attempt
// that waited for a slot of its host (WithMaxInFlight, a limit of 1)
// behind a call the host answers in 9s, and is then cut by its call's
// budget (WithMaxElapsed 10s, no attempt timeout: the defaults' shape)
// after 1s on the wire, is not counted by the host's breaker: the 9s the
// queue took from it were the queue's, not the host's, and the breaker
// (one failure opens it) must not open for a healthy host, refusing the
// next call, which a plain client would have sent and had answered. A
// budget cut of an attempt that did not wait (another host, which hangs)
// still counts.
func TestMaxInFlightBudgetCutAfterSlotWaitNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(_ int, req *http.Request) time.Duration {
			switch {
			case req.URL.Host == "slow.test" && req.URL.Path == "/first":
				return time.Second
			case req.URL.Host == "hung.test", req.URL.Host == "slow.test":
				return time.Hour
			}
			return 9 * time.Second
		}}
		tr := New(srv, WithMaxInFlight(1), WithMaxRetries(0), WithMaxElapsed(10*time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute}))
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/first"); code != http.StatusOK || err != nil {
				t.Errorf("the first call: %d, %v; want 200", code, err)
			}
		})
		synctest.Wait()
		start := time.Now()
		_, err := getIn(t, tr, context.Background(), "http://api.test/queued")
		if !errors.Is(err, ErrAttemptTimeout) || time.Since(start) != 10*time.Second {
			t.Fatalf("the queued call: %v after %v; want the budget's cut at 10s", err, time.Since(start))
		}
		wg.Wait()
		if s := tr.BreakerState("http://api.test/"); s != BreakerClosed {
			t.Errorf("breaker %v after a budget cut of an attempt that waited 9s for a slot, want closed: the wait was the queue's, not the host's", s)
		}
		if code, err := getIn(t, tr, context.Background(), "http://api.test/next"); code != http.StatusOK || err != nil {
			t.Errorf("the next call: %d, %v; want 200 (a plain client's answer)", code, err)
		}

		// An attempt that did not wait for a slot, cut by the budget,
		// is the host's: counted.
		if _, err := getIn(t, tr, context.Background(), "http://hung.test/x"); !errors.Is(err, ErrAttemptTimeout) {
			t.Fatalf("the hung host's call: %v, want the budget's cut", err)
		}
		if s := tr.BreakerState("http://hung.test/"); s != BreakerOpen {
			t.Errorf("breaker %v after a budget cut of an attempt that did not wait, want open", s)
		}

		// Nor does a wait for a slot shorter than the time the attempt
		// then had on the wire excuse the host: one that waited 1s and
		// hung 9s, cut by the budget, is counted.
		wg.Go(func() { getIn(t, tr, context.Background(), "http://slow.test/first") })
		synctest.Wait()
		if _, err := getIn(t, tr, context.Background(), "http://slow.test/queued"); !errors.Is(err, ErrAttemptTimeout) {
			t.Fatalf("the slow host's queued call: %v, want the budget's cut", err)
		}
		wg.Wait()
		if s := tr.BreakerState("http://slow.test/"); s != BreakerOpen {
			t.Errorf("breaker %v after a budget cut of an attempt that waited 1s for a slot and hung 9s on the wire, want open", s)
		}
		synctest.Wait()
	})
}

// TestMaxInFlightHangingHostTripsBreaker checks that a host that never
// answers trips its breaker under WithMaxInFlight with the Transport's
// defaults otherwise (no attempt timeout, a 5-minute budget, a breaker of
// 20 outcomes at half failures in 30s). A call arriving each second
// queues for the slot; each holder, the oldest call still alive, has
// what is left of its budget on the wire, less than it waited, and is
// cut by the budget. Those cuts are the host's: the slot was held all
// along by attempts the host never answered, not by answers it was
// giving. Within 15 minutes the breaker must open and refuse calls at
// once, as it does without WithMaxInFlight.
func TestMaxInFlightHangingHostTripsBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(int, *http.Request) time.Duration { return 24 * time.Hour }}
		tr := New(srv, WithMaxInFlight(1))
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			refused int
		)
		for range 15 * 60 { // 900 calls
			wg.Go(func() {
				_, err := getIn(t, tr, context.Background(), "http://hung.test/x")
				if errors.Is(err, ErrCircuitOpen) {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			})
			time.Sleep(time.Second)
		}
		wg.Wait()
		srv.mu.Lock()
		sent := len(srv.arrivals)
		srv.mu.Unlock()
		if refused == 0 || sent > 100 {
			t.Errorf("a host that never answers, a call a second for 15 min under WithMaxInFlight(1): %d attempts sent, %d calls refused by the breaker (state %v); want it open, at most 100 attempts sent", sent, refused, tr.BreakerState("http://hung.test/"))
		}
	})
}
