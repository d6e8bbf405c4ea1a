package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightQueuedAttemptWaitsForAQuotaSpentMeanwhile pins that a
// success that says the quota is spent (X-RateLimit-Remaining: 0, reset in
// 30 s), answered while attempts wait for a slot of its host, holds them
// too, as WithMaxInFlight says ("a quota spent"): an attempt queued behind
// it is not sent into the spent quota when the slot comes to it, but waits
// for the reset, as a call that comes after the response does.
func TestMaxInFlightQueuedAttemptWaitsForAQuotaSpentMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		codes, arrivals := queuedBehind(t, 3, func(n int, resp *http.Response) {
			resp.Header.Set("X-RateLimit-Limit", "10")
			resp.Header.Set("X-RateLimit-Remaining", "0")
			if n > 0 {
				resp.Header.Set("X-RateLimit-Remaining", "9") // a new window
			}
			resp.Header.Set("X-RateLimit-Reset", "30")
		})
		for i, c := range codes {
			if c != http.StatusOK {
				t.Errorf("call %d: %d, want 200", i, c)
			}
		}
		// The first answer, at 1 s, spent the quota until 31 s.
		reset := time.Second + 30*time.Second
		for _, at := range arrivals[1:] {
			if at < reset {
				t.Errorf("the server got requests at %v; want none before %v, the reset of the quota the first answer said was spent", arrivals, reset)
				break
			}
		}
	})
}
