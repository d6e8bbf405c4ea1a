package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitSpentJustBeforeResetLateAnswer: a host's quota is 100 an
// hour, counted in clock hours, its reset announced in whole seconds (cut
// down) when fewer than 10 are left, and it answers in 300 ms. A client
// uses the first hour's quota, its last call sent just before the hour
// ends and answered just after, and then makes a batch of 50 calls, which
// the server takes, as a plain client's. The reset the limiter believed
// was read from the first answer that announced it, 300 ms late, so the
// old window was not over for it when the batch came: the batch took
// turns of the old window's pace, and those whose turn passed
// WithMaxRetryAfter were refused at once, 41 of 50. The late answer says
// the window's reset has passed ("RateLimit-Reset: 0"): the window is over
// then. When the last call is sent as the new hour begins, before the
// reset believed, and answered after it, its answer tells of no window
// that began while it was on its way, though it arrived after: the batch
// still waits for the new window's first answer.
func TestRateLimitSpentJustBeforeResetLateAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int           // the first hour's, before the last call
		last  time.Duration // when the last call is sent, from the first hour's end
	}{
		{"late answer says none left, reset 0", 99, -100 * time.Millisecond},
		{"late answer says 1 left, reset 0", 98, -100 * time.Millisecond},
		{"late answer says none left, reset 0, sent 250ms before the hour's end", 99, -250 * time.Millisecond},
		{"last call sent as the new hour begins, answered after the reset believed", 99, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, tc.calls)
				time.Sleep(time.Until(start.Add(time.Hour + tc.last)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("last call: %d, %v", code, err)
				}
				counts := map[int]int{}
				var longest time.Duration
				eachOfBatch(t, client, 50, func(code int, err error, took time.Duration) {
					counts[code]++
					longest = max(longest, took)
				})
				if counts[200] != 50 {
					t.Errorf("batch of 50 made as the new hour begins: %v (0: refused); want all 50 answered, as a plain client's", counts)
				}
				if n := srv.throttled[0] + srv.throttled[1]; n > 0 {
					t.Errorf("the host answered %d requests 429; want none, as a plain client's", n)
				}
				if bound := time.Minute + 300*time.Millisecond; longest > bound {
					t.Errorf("a call took %v; want %v at most (WithMaxRetryAfter and an answer)", longest, bound)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}
