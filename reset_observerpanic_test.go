package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestResetHostObserverPanicStillWakesRetryWaits: ResetHost tells the
// breaker observers of the open breaker it removes; an observer that panics
// takes its panic to the caller of ResetHost, but only once ResetHost has
// done all it promises. The call waiting for the Retry-After of the host's
// answer wakes and retries at once; it slept the whole Retry-After out, its
// wake-up skipped by the panic.
func TestResetHostObserverPanicStillWakesRetryWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := new(bkHost)
		h.status.Store(http.StatusServiceUnavailable)
		h.header = http.Header{"Retry-After": {"30"}}
		panicking := true
		tr := New(bkNet{"api.test": h}, WithMaxRetries(1), WithoutHedging(), WithoutRateLimit(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second}),
			WithBreakerObserver(func(c BreakerChange) {
				if panicking && c.To == BreakerClosed {
					panic("observer exploded")
				}
			}))
		var wg sync.WaitGroup
		wg.Go(func() { bkCall(t, tr, "http://api.test/") }) // trips the breaker, then waits 30s
		synctest.Wait()
		if got := tr.BreakerState("http://api.test/"); got != BreakerOpen {
			t.Fatalf("BreakerState = %v, want open", got)
		}
		h.status.Store(http.StatusOK)
		time.Sleep(time.Second)
		func() {
			defer func() {
				if p := recover(); p != "observer exploded" {
					t.Errorf("ResetHost panicked with %v, want the observer's panic", p)
				}
			}()
			tr.ResetHost("api.test")
		}()
		panicking = false
		synctest.Wait()
		if got := h.hits.Load(); got != 2 {
			t.Errorf("1s into a 30s Retry-After, after ResetHost: %d attempts, want 2: the waiting call was not woken", got)
		}
		wg.Wait()
	})
}
