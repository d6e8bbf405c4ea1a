package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitScoutTakesNoTurnPastItsWait: a host's quota is 100 an
// hour, counted in clock hours, its reset announced in whole seconds when
// fewer than 10 are left, and every answer takes 3 s. A client uses 98 of
// the first hour's quota; its last call, sent 3 s before the hour ends,
// is answered at the hour's end with 1 left and "RateLimit-Reset: 3": the
// reset the limiter believes is 3 s into the new hour. Three calls made
// then, WithMaxRetryAfter(5s) (and no spread of the waits): the first goes
// at once, with the last token of the pace, and the other two wait for
// the reset (the quota is spent by the one in flight). There, the pace's
// next turn, some 3.5 s into the hour, is within the bound of the
// server's waits for one, and past it for the other, which goes as the
// new window's scout without a token, 250 ms after the reset (see
// rateLimiter.nextScout). The scout takes no turn of the pace: the first
// is sent at its turn, beside it, which the server, in its new hour,
// takes. (A rule tried and dropped, that the scout takes the pace's next
// turn, sent that turn to the back of the queue, 38 s later, past the
// bound, and the call was refused when its wait for the scout's answer
// ended. It spared a 429 on a rolling window whose answers are slower
// than the gap to that turn, which the limiter cannot tell from this
// one: see nextScout.)
func TestRateLimitScoutTakesNoTurnPastItsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		reset := start.Add(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 3 * time.Second, ok: map[int]int{}, throttled: map[int]int{}}
		var log sendLog
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			log.add(time.Now())
			return handlerRT{srv}.RoundTrip(req)
		})
		tr := New(base, WithMaxRetries(0), WithMaxRetryAfter(5*time.Second), withRand(func(int64) int64 { return 0 }))
		client := &http.Client{Transport: tr}
		useFirstHour(t, client, start, 98)
		time.Sleep(time.Until(reset.Add(-3 * time.Second)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call of the first hour: %d, %v", code, err)
		}
		counts := map[int]int{}
		eachOfBatch(t, client, 3, func(code int, err error, _ time.Duration) {
			if code == 0 && !errors.Is(err, ErrRateLimited) {
				t.Errorf("call of the batch: %v", err)
			}
			if counts[code]++; code == 0 {
				t.Logf("refused: %v", err)
			}
		})
		var sent []time.Duration
		for _, at := range log.times() {
			if !at.Before(reset) {
				sent = append(sent, at.Sub(reset))
			}
		}
		if counts[200] != 3 || srv.throttled[1] != 0 {
			t.Errorf("batch of 3 at the hour's end, answers in 3 s: %v (0: refused), the host answered %d 429s; want all 3 answered 200, none 429 (requests sent at %v after the hour's end)", counts, srv.throttled[1], sent)
		}
		checkNoneInFlight(t, tr)
	})
}
