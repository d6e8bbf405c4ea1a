package resilient

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// failAllAfter answers every request it gets at or after from with a 500
// that announces no quota, 300 ms after it comes, without passing it to
// h; h answers the others. It counts the requests it fails, and the most
// of them in flight together.
type failAllAfter struct {
	h    http.Handler
	from time.Time

	mu                sync.Mutex
	failed, now, most int
}

func (f *failAllAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if time.Now().Before(f.from) {
		f.h.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.failed++
	f.now++
	f.most = max(f.most, f.now)
	f.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	f.mu.Lock()
	f.now--
	f.mu.Unlock()
	w.WriteHeader(http.StatusInternalServerError)
}

// TestRateLimitNewWindowHostileScouts: as in
// TestRateLimitNewWindowScoutFailed, but the host answers every request of
// the new window 500 without a count. The attempts whose turns of the old
// pace pass WithMaxRetryAfter go one at a time as its scouts (see
// unheardSince): each attempt ends within WithMaxRetryAfter and the answer
// it waited for, each call within its budget, the host gets no more requests than a plain client's would
// send, and never two scouts together (a scout may be in flight with an
// attempt sent at its turn of the old pace); the breaker sees the
// failures and opens; no attempt stays counted in flight.
func TestRateLimitNewWindowHostileScouts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		most    int           // requests a plain client's calls make
		bound   time.Duration // of a call
		breaker bool
	}{
		{"no retries, no breaker", []Option{WithMaxRetries(0), WithoutBreaker()}, 50, time.Minute + 300*time.Millisecond, false},
		{"no retries", []Option{WithMaxRetries(0)}, 50, time.Minute + 300*time.Millisecond, true},
		{"defaults", nil, 50 * 4, DefaultMaxElapsed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				host := &failAllAfter{h: srv, from: start.Add(61 * time.Minute)}
				tr := New(handlerRT{host}, tc.opts...)
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				counts := map[string]int{}
				var longest time.Duration
				eachOfBatch(t, client, 50, func(code int, err error, took time.Duration) {
					longest = max(longest, took)
					switch {
					case code == 500:
						counts["500"]++
					case errors.Is(err, ErrCircuitOpen):
						counts["open"]++
					case errors.Is(err, ErrRateLimited):
						counts["refused"]++
					default:
						counts["other"]++
						t.Errorf("call: %d, %v", code, err)
					}
				})
				host.mu.Lock()
				failed, most := host.failed, host.most
				host.mu.Unlock()
				t.Logf("%v; the host got %d requests, %d together at most; longest call %v", counts, failed, most, longest)
				if failed > tc.most || most > 2 {
					t.Errorf("the host got %d requests, %d together at most; want %d at most, as a plain client's, 2 together at most (a scout, and an attempt at its turn of the old pace)", failed, most, tc.most)
				}
				if longest > tc.bound {
					t.Errorf("a call took %v; want %v at most (WithMaxRetryAfter and an answer each attempt, the call's budget in all)", longest, tc.bound)
				}
				if tc.breaker && counts["open"] == 0 {
					t.Errorf("%v: no call refused by the breaker; want it open on the failures", counts)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}

// TestRateLimitSpentQuotaHostileScoutsStaticLimit: a host's quota of 100
// an hour is spent ten seconds before the hour is over, and a batch of 50
// calls is made then, which the quota's gate holds to its reset; the host
// answers every request of the new window 500 without a count, in 300 ms.
// The Transport has a static limit too (WithRateLimit, 1 a second, above
// the pace of the host's quota): the attempts that go one after another as
// the new window's scouts (see unheardSince) go no faster than it allows.
func TestRateLimitSpentQuotaHostileScoutsStaticLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
		host := &failAllAfter{h: srv, from: start.Add(time.Hour)}
		var mu sync.Mutex
		var sent []time.Time // the requests of the new window
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if now := time.Now(); !now.Before(start.Add(time.Hour)) {
				mu.Lock()
				sent = append(sent, now)
				mu.Unlock()
			}
			return handlerRT{host}.RoundTrip(req)
		})
		client := &http.Client{Transport: New(base, WithMaxRetries(0), WithoutBreaker(), WithRateLimit(1, 1))}
		useFirstHour(t, client, start, 99)
		time.Sleep(time.Until(start.Add(time.Hour - 10*time.Second)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call of the first hour: %d, %v", code, err)
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { do(t, client, "GET", "http://api.test/x") })
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		most := 0
		for i := range sent {
			n := 0
			for _, s := range sent[i:] {
				if s.Sub(sent[i]) < time.Second {
					n++
				}
			}
			most = max(most, n)
		}
		if most > 2 {
			t.Errorf("%d requests of the new window, %d within a second at most; want 2 at most (WithRateLimit(1, 1))", len(sent), most)
		}
	})
}

// TestRateLimitSpentQuotaStaticLimitRaisedQuota: as in
// TestRateLimitSpentQuotaHostileScoutsStaticLimit, a batch of 50 calls
// waits for the reset of a spent quota of 100 an hour, under a static
// limit far above the quota's pace (WithRateLimit(100, 100)); the new
// window's scout is answered with a quota of 100000 an hour. A static
// limiter keeps its tokens (see pace), but the learned rate it follows
// rises (see setRate): the attempts whose turns of the old pace passed
// WithMaxRetryAfter, which waited for that answer (see scouting), take
// their retimed turns and are sent, as a plain client's calls are. The
// wait for the scout's answer under a static limit does not always end in
// a refusal.
func TestRateLimitSpentQuotaStaticLimitRaisedQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
		scout := &failFirstAfter{h: srv, from: start.Add(time.Hour), answer: func(w http.ResponseWriter) {
			w.Header().Set("RateLimit-Limit", "100000")
			w.Header().Set("RateLimit-Remaining", "99999")
			w.Header().Set("RateLimit-Reset", "3599")
		}}
		client := &http.Client{Transport: New(handlerRT{scout}, WithMaxRetries(0), WithoutBreaker(), WithRateLimit(100, 100))}
		useFirstHour(t, client, start, 99)
		time.Sleep(time.Until(start.Add(time.Hour - 10*time.Second)))
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("last call of the first hour: %d, %v", code, err)
		}
		if sent, refused := sendBatch(t, client, 50); sent != 50 {
			t.Errorf("batch of 50 after a spent quota's reset, its scout answered with a quota 1000 times larger: %d sent, %d refused; want all sent, as a plain client's", sent, refused)
		}
	})
}
