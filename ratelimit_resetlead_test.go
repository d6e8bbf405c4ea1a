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

// TestRateLimitResetLeadWithinMaxRetryAfter: a host's quota is 100 an
// hour, counted in clock hours, its reset announced in whole seconds (cut
// down) when fewer than 10 are left, and it answers in 300 ms. A client
// uses 98 of the first hour's quota; its last call, sent 900 ms before the
// hour ends, is answered "RateLimit-Reset: 0", which the limiter does not
// count: the reset it believes is 300 ms after the hour's end, 900 ms
// away, with 2 left and the pace's bucket empty. A batch of 20 made then,
// each call bounded by WithMaxRetryAfter (0, or 200 ms: WithCallOptions),
// finds its turns of the pace past that bound. A call waits for the
// server no longer than that bound, and a tenth of it past a pause or a
// reset (see WithMaxRetryAfter): zero waits for none. Held to the reset
// the limiter believes (see resetPrecision), 900 ms away, each waited
// four times its bound or more, and all but one were refused at the end.
func TestRateLimitResetLeadWithinMaxRetryAfter(t *testing.T) {
	for _, maxWait := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(maxWait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const latency = 300 * time.Millisecond
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: latency, ok: map[int]int{}, throttled: map[int]int{}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 98)
				time.Sleep(time.Until(start.Add(time.Hour - 900*time.Millisecond)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("last call: %d, %v", code, err)
				}
				ctx := WithCallOptions(context.Background(), WithMaxRetryAfter(maxWait))
				bound := maxWait + maxWait/scoutGraceShare
				var mu sync.Mutex
				var wg sync.WaitGroup
				counts := map[int]int{}
				var longest time.Duration
				for range 20 {
					wg.Go(func() {
						req, err := http.NewRequestWithContext(ctx, "GET", "http://api.test/x", nil)
						if err != nil {
							t.Error(err)
							return
						}
						began := time.Now()
						code := 0
						resp, err := client.Do(req)
						if err == nil {
							code = resp.StatusCode
							resp.Body.Close()
						} else if !errors.Is(err, ErrRateLimited) {
							t.Errorf("call of the batch: %v", err)
						}
						took := time.Since(began)
						if code != 0 {
							took -= latency // the server's answer time is not a wait
						}
						mu.Lock()
						defer mu.Unlock()
						counts[code]++
						longest = max(longest, took)
					})
				}
				wg.Wait()
				if longest > bound {
					t.Errorf("batch of 20 made 900ms before the believed reset, WithMaxRetryAfter(%v) per call: a call waited %v for the server (%v; 0: refused); want %v at most", maxWait, longest, counts, bound)
				}
				if n := srv.throttled[0] + srv.throttled[1]; n > 0 {
					t.Errorf("the host answered %d requests 429; want none", n)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}

// TestRateLimitResetBelievedEarlyNoScoutIntoSpentHour: a host's quota is
// 100 an hour, counted in clock hours, its reset announced with every
// answer in whole seconds (cut down), answered at once. A client spends
// 99 of the first hour's quota in a burst 600.6 s before the hour ends:
// each answer says "RateLimit-Reset: 600", and the reset the limiter
// believes is 600 ms before the hour's end, the earliest a reset in whole
// seconds can be. Its last call, the quota's last, sent 950 ms before the
// hour ends, is answered "Reset: 0", which counts nothing. A batch of 10
// calls made 300 ms before the reset believed, WithMaxRetryAfter(5s), finds
// its turns of the pace past the bound. Refused at once, none went into
// the spent hour. Held to the reset believed and then to the scout's
// grace, one went as the scout 250 ms after it, 350 ms before the hour's
// end, and was answered 429.
func TestRateLimitResetBelievedEarlyNoScoutIntoSpentHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(int) bool { return true }, start: start, ok: map[int]int{}, throttled: map[int]int{}}
		tr := New(handlerRT{srv}, WithMaxRetries(0), WithMaxRetryAfter(5*time.Second))
		client := &http.Client{Transport: tr}
		time.Sleep(time.Until(start.Add(time.Hour - 600*time.Second - 600*time.Millisecond)))
		for i := range 99 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
				t.Fatalf("call %d of the first hour: %d, %v", i, code, err)
			}
		}
		time.Sleep(time.Until(start.Add(time.Hour - 950*time.Millisecond)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call: %d, %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
		counts := map[int]int{}
		eachOfBatch(t, client, 10, func(code int, err error, took time.Duration) {
			if code == 0 && !errors.Is(err, ErrRateLimited) {
				t.Errorf("call of the batch: %v", err)
			}
			counts[code]++
		})
		if n := srv.throttled[0]; n > 0 {
			t.Errorf("batch of 10 made 300ms before the reset believed, 900ms before the hour's end: %v (0: refused); the host answered %d requests 429 in the spent hour; want none", counts, n)
		}
		checkNoneInFlight(t, tr)
	})
}
