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
// uses the first hour's quota, its last call sent as the new hour begins,
// before the reset the limiter believes (read from the first answer that
// announced it, 300 ms late), and answered after it; then it makes a
// batch of 50 calls, which the server takes, as a plain client's. That
// answer tells of no window that began while it was on its way, though it
// arrived after (see partition.heardSent): the batch waits for the new
// window's first answer, whose count fills the pace's bucket. Taken for
// news of the new window, it left no scout to go, and 41 of 50 were
// refused at once. The last call sent a tenth or a quarter of a second
// before the hour ends, and answered "RateLimit-Reset: 0" just after it,
// leaves the batch a moment before the reset the limiter believes: the
// attempts whose turn passes the bound wait for that reset, then for the
// new window's first answer (see resetPrecision). Refused at once, 41 of
// 50 (40 with 1 left) were refused a request the server takes.
func TestRateLimitSpentJustBeforeResetLateAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int           // the first hour's, before the last call
		last  time.Duration // when the last call is sent, from the first hour's end
	}{
		{"last call sent as the new hour begins, answered after the reset believed", 99, 100 * time.Millisecond},
		{"last call, the quota's last, sent 100ms before the hour ends, answered Reset: 0 after it", 99, -100 * time.Millisecond},
		{"last call, the quota's last, sent 250ms before the hour ends, answered Reset: 0 after it", 99, -250 * time.Millisecond},
		{"last call, 1 left after it, sent 100ms before the hour ends, answered Reset: 0 after it", 98, -100 * time.Millisecond},
		{"last call, 1 left after it, sent 250ms before the hour ends, answered Reset: 0 after it", 98, -250 * time.Millisecond},
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

// TestRateLimitLastSecondCountsAnnounceNoWindow: the same host, which
// announces its reset with every answer, in whole seconds cut down. In the
// old hour's last half second, its answers say "RateLimit-Reset: 0" (the
// reset is less than a second away) with requests still left: they count
// the old window, not a new one whose reset is unknown. A batch made then
// is not sent past the old hour's quota, and a batch of 50 made a second
// into the new hour, which the server takes, is answered. (A rule tried
// and dropped, that such an answer ends the window of the last count,
// took their counts for a new window's: up to 11 of 30 answered 429, and
// 32 of the 50 refused, 24 when the host answers in 20 ms.)
func TestRateLimitLastSecondCountsAnnounceNoWindow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		latency time.Duration
		last    int           // calls one after another from half a second before the hour's end
		batch   int           // calls made together then
		at      time.Duration // when, from the first hour's end
	}{
		{"batch in the last half second", 20 * time.Millisecond, 1, 30, -500 * time.Millisecond},
		{"batch as the new hour begins", 0, 3, 50, time.Second},
		{"batch as the new hour begins, answered in 20ms", 20 * time.Millisecond, 3, 50, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(int) bool { return true }, start: start, latency: tc.latency, ok: map[int]int{}, throttled: map[int]int{}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 80)
				time.Sleep(time.Until(start.Add(time.Hour - 500*time.Millisecond)))
				for i := range tc.last {
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
						t.Fatalf("call %d of the last half second: %d, %v", i, code, err)
					}
				}
				time.Sleep(time.Until(start.Add(time.Hour + tc.at)))
				counts := map[int]int{}
				eachOfBatch(t, client, tc.batch, func(code int, err error, took time.Duration) {
					counts[code]++
				})
				if n := srv.throttled[0] + srv.throttled[1]; n > 0 {
					t.Errorf("the host answered %d requests 429 (batch: %v); want none: the old hour's quota is spent", n, counts)
				}
				if tc.at > 0 && counts[200] != tc.batch {
					t.Errorf("batch of %d made as the new hour begins: %v (0: refused); want all %d answered, as a plain client's", tc.batch, counts, tc.batch)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}

// TestRateLimitLastSecondAnswersTellNoNewWindow: the same host. A call
// made half a second before the old hour's end is answered "Reset: 0"; a
// batch of 30 made a tenth of a second later spends what is left of the
// old hour, and those past it wait for turns of the pace. A batch of 50
// made half a second into the new hour, which the server takes, waits for
// its first answer, and is answered; the old hour's quota gets no request
// past it. (A rule tried and dropped, that an answer whose reset has
// passed ends the window of the last count, took the old hour's last
// answers for news of the next: no scout went, and all 50 were refused
// at once.)
func TestRateLimitLastSecondAnswersTellNoNewWindow(t *testing.T) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(int) bool { return true }, start: start, latency: latency, ok: map[int]int{}, throttled: map[int]int{}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 80)
				time.Sleep(time.Until(start.Add(time.Hour - 500*time.Millisecond)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("call of the last half second: %d, %v", code, err)
				}
				time.Sleep(100 * time.Millisecond)
				last := make(chan struct{})
				go func() {
					defer close(last)
					eachOfBatch(t, client, 30, func(int, error, time.Duration) {})
				}()
				time.Sleep(time.Until(start.Add(time.Hour + 500*time.Millisecond)))
				counts := map[int]int{}
				eachOfBatch(t, client, 50, func(code int, err error, took time.Duration) {
					counts[code]++
				})
				<-last
				if counts[200] != 50 {
					t.Errorf("batch of 50 made as the new hour begins: %v (0: refused); want all 50 answered, as a plain client's", counts)
				}
				if n := srv.throttled[0] + srv.throttled[1]; n > 0 {
					t.Errorf("the host answered %d requests 429; want none", n)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}
