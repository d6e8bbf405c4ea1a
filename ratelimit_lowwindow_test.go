package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// hourQuotaServer counts a quota of 100 requests per clock hour, and
// announces its reset when announce says so of the requests left (a
// vendor that announces it only when the quota runs low, or always). A
// request past the quota is answered 429, with the reset. ok and throttled
// count its answers per hour from start.
type hourQuotaServer struct {
	announce func(left int) bool
	start    time.Time
	latency  time.Duration

	mu        sync.Mutex
	hour      time.Time
	used      int
	ok        map[int]int
	throttled map[int]int
}

func (s *hourQuotaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	if h := now.Truncate(time.Hour); !h.Equal(s.hour) {
		s.hour, s.used = h, 0
	}
	left, over := 100-s.used, s.used == 100
	n := int(now.Sub(s.start) / time.Hour)
	if over {
		s.throttled[n]++
	} else {
		s.used++
		left--
		s.ok[n]++
	}
	end := s.hour.Add(time.Hour)
	s.mu.Unlock()
	time.Sleep(s.latency)
	w.Header().Set("RateLimit-Limit", "100")
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(left))
	if over || s.announce(left) {
		w.Header().Set("RateLimit-Reset", strconv.Itoa(int(end.Sub(now)/time.Second)))
	}
	if over {
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

// useFirstHour makes n calls through client one after another from 50
// minutes into the hour that began at start, each of which must be
// answered 200: a client's use of an hourQuotaServer's first hour.
func useFirstHour(t *testing.T, client *http.Client, start time.Time, n int) {
	t.Helper()
	time.Sleep(time.Until(start.Add(50 * time.Minute)))
	for i := range n {
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("call %d of the first hour: %d, %v", i, code, err)
		}
	}
}

// TestRateLimitLowWindowNewWindowBurst: a host's quota is 100 an hour,
// counted in clock hours. A client uses most of it, not all, in the last
// ten minutes of an hour: the last response says that 1 (or 5) is left.
// A minute into the next hour, a batch of 50 calls is made, which the
// server takes (its responses say that 50 and more remain), as a plain
// client's would be. The pace's bucket kept the burst of the old window's
// last count, 1 or 5, as a spent window's did before its new window filled
// it: all but a few of the batch were held up to WithMaxRetryAfter, then
// refused. When the host answers in 300 ms, the whole batch takes its turns
// of the old pace before the new window's first answer fills the bucket:
// those whose turn passed WithMaxRetryAfter, or the call's deadline, were
// refused at once (10 of 50 sent), also after a window the client had spent
// whole, whose reset held none of the batch; they wait for that answer.
func TestRateLimitLowWindowNewWindowBurst(t *testing.T) {
	for _, tc := range []struct {
		name     string
		calls    int // the first hour's
		announce func(left int) bool
		latency  time.Duration
	}{
		{"reset when low, 1 left", 99, func(left int) bool { return left < 10 }, 0},
		{"reset when low, 5 left", 95, func(left int) bool { return left < 10 }, 0},
		{"reset always, 1 left", 99, func(int) bool { return true }, 0},
		{"reset when low, 1 left, answers in 300ms", 99, func(left int) bool { return left < 10 }, 300 * time.Millisecond},
		{"reset when low, 5 left, answers in 300ms", 95, func(left int) bool { return left < 10 }, 300 * time.Millisecond},
		{"reset always, 1 left, answers in 300ms", 99, func(int) bool { return true }, 300 * time.Millisecond},
		{"reset when low, none left, answers in 300ms", 100, func(left int) bool { return left < 10 }, 300 * time.Millisecond},
		{"reset always, none left", 100, func(int) bool { return true }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: tc.announce, start: start, latency: tc.latency, ok: map[int]int{}, throttled: map[int]int{}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				useFirstHour(t, client, start, tc.calls)
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				if ok, refused := sendBatch(t, client, 50); ok != 50 {
					t.Errorf("batch of 50 in a new window of 100: %d sent, %d refused; want all sent, as a plain client's", ok, refused)
				}
			})
		})
	}
}

// TestRateLimitNewWindowFillsOncePerWindow: 20 callers call a host whose
// quota is 100 an hour, each every 30 seconds or so, for four hours, and
// the host answers in 300 ms: a plain client's calls get some 1750 429s an
// hour. Whether the host announces its reset only when the quota runs low
// or always, the pace's bucket fills once per window, at its start: the
// host gets its quota each hour, and almost no request past it.
func TestRateLimitNewWindowFillsOncePerWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		announce func(left int) bool
	}{
		{"reset when low", func(left int) bool { return left < 10 }},
		{"reset always", func(int) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour).Add(time.Hour)
				srv := &hourQuotaServer{announce: tc.announce, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				time.Sleep(time.Until(start))
				var wg sync.WaitGroup
				for g := range 20 {
					wg.Go(func() {
						for time.Since(start) < 4*time.Hour {
							_, err := do(t, client, "GET", "http://api.test/x")
							switch {
							case errors.Is(err, ErrRateLimited):
								time.Sleep(time.Duration(10+g) * time.Second)
							case err != nil:
								t.Errorf("call: %v", err)
								return
							default:
								time.Sleep(time.Duration(30+g) * time.Second)
							}
						}
					})
				}
				wg.Wait()
				srv.mu.Lock()
				defer srv.mu.Unlock()
				for h := range 4 {
					if srv.ok[h] != 100 || srv.throttled[h] > 1 {
						t.Errorf("hour %d: the host took %d requests and answered %d 429s; want its quota, 100, and 1 429 at most", h, srv.ok[h], srv.throttled[h])
					}
				}
			})
		})
	}
}

// TestRateLimitNewWindowStaticLimitRefusesAtOnce: as in
// TestRateLimitLowWindowNewWindowBurst, a batch of calls takes turns of the
// old window's pace a minute into the next hour, before the new window's
// first answer, which the host gives in 5 s; but the Transport has a static
// limit too (WithRateLimit, far above the host's quota). A static limiter
// keeps its tokens (see pace): the new window's answer fills nothing, and an
// attempt whose turn passes WithMaxRetryAfter, or the call's deadline, is
// refused all the same once it comes. It is refused at once, as before
// attempts waited for that answer, not when it comes (or a tenth of
// WithMaxRetryAfter later, when it does not).
func TestRateLimitNewWindowStaticLimitRefusesAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		calls   int           // the first hour's
		timeout time.Duration // each call's in the batch; 0 for none
	}{
		{"1 left, turns past WithMaxRetryAfter", 99, 0},
		{"1 left, turns past the deadline", 99, 30 * time.Second},
		{"none left, turns past WithMaxRetryAfter", 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 5 * time.Second, ok: map[int]int{}, throttled: map[int]int{}}
				tr := New(handlerRT{srv}, WithMaxRetries(0), WithRateLimit(100, 100))
				time.Sleep(time.Until(start.Add(50 * time.Minute)))
				for i := range tc.calls {
					if code, _, err := send(t, tr, context.Background(), "GET", "http://api.test/x", ""); code != 200 || err != nil {
						t.Fatalf("call %d of the first hour: %d, %v", i, code, err)
					}
				}
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				var refused atomic.Int64
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() {
						ctx := context.Background()
						if tc.timeout > 0 {
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(ctx, tc.timeout)
							defer cancel()
						}
						began := time.Now()
						code, _, err := send(t, tr, ctx, "GET", "http://api.test/x", "")
						switch {
						case code == 200:
						case errors.Is(err, ErrRateLimited):
							refused.Add(1)
							if waited := time.Since(began); waited != 0 {
								t.Errorf("a call refused after %v (%v); want at once", waited, err)
							}
						default:
							t.Errorf("call of the batch: %d, %v", code, err)
						}
					})
				}
				wg.Wait()
				if refused.Load() == 0 {
					t.Fatal("no call of the batch refused: the case tests nothing")
				}
			})
		})
	}
}
