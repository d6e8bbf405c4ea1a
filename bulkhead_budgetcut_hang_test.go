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
