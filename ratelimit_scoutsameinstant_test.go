package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitNewWindowScoutsAtOneInstant: as in
// TestRateLimitSpentQuotaScoutFailed, a host's quota of 100 an hour is
// spent a second before the hour is over, and the pace's bucket holds no
// token at the reset (its turns 36 s apart); but the batch of 50 calls
// comes half a second after the reset, all at one instant, which no gate
// held. Each attempt past the bound waits for one whose turn comes first
// to go as the new window's scout, until the same instant, halfway
// through its wait for the scout's answer (see rateLimiter.nextScout):
// one of them goes then, the only request sent before the new window's
// first answer, and the others are sent when that answer fills the pace's
// bucket, as a plain client's are answered.
func TestRateLimitNewWindowScoutsAtOneInstant(t *testing.T) {
	for _, latency := range []time.Duration{time.Nanosecond, 300 * time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				reset := start.Add(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: latency, ok: map[int]int{}, throttled: map[int]int{}}
				var mu sync.Mutex
				var answered time.Time // the new window's first answer
				var early int          // requests of the new window sent before it
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					sent := time.Now()
					mu.Lock()
					if !sent.Before(reset) && answered.IsZero() {
						early++
					}
					mu.Unlock()
					resp, err := handlerRT{srv}.RoundTrip(req)
					mu.Lock()
					if !sent.Before(reset) && answered.IsZero() {
						answered = time.Now()
					}
					mu.Unlock()
					return resp, err
				})
				tr := New(base, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(reset.Add(-time.Second - latency)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("last call of the first hour: %d, %v", code, err)
				}
				time.Sleep(time.Until(reset.Add(500 * time.Millisecond)))
				counts := map[int]int{}
				eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
					if counts[code]++; code == 0 && counts[0] == 1 {
						t.Logf("refused: %v", err)
					}
				})
				mu.Lock()
				defer mu.Unlock()
				if counts[200] != 50 || early != 1 {
					t.Errorf("batch of 50 at one instant after the reset of a quota spent a second before it: %v (0: refused), %d requests sent before the new window's first answer; want 50 answered 200, as a plain client's, and 1 (the scout)", counts, early)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}
