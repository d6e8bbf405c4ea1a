package resilient

import (
	"cmp"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// failFirstAfter answers the first request it gets at or after from with
// a 500 that announces no quota (a proxy's, or the host's error page), or
// with answer when set, 300 ms after it comes (at, when set), without
// passing it to h; h answers the others.
type failFirstAfter struct {
	h      http.Handler
	from   time.Time
	answer func(w http.ResponseWriter)
	at     time.Duration // after the request comes; 300 ms when 0

	mu     sync.Mutex
	failed bool
}

func (f *failFirstAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fail := !f.failed && !time.Now().Before(f.from)
	f.failed = f.failed || fail
	f.mu.Unlock()
	if !fail {
		f.h.ServeHTTP(w, r)
		return
	}
	time.Sleep(cmp.Or(f.at, 300*time.Millisecond))
	if f.answer != nil {
		f.answer(w)
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
}

// resetFirstAfter returns a RoundTripper that fails the first request it
// gets at or after from, 300 ms after it comes, with a connection reset
// (no response: see partition.end), without passing it to h; h answers the
// others.
func resetFirstAfter(h http.Handler, from time.Time) http.RoundTripper {
	var mu sync.Mutex
	failed := false
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		fail := !failed && !time.Now().Before(from)
		failed = failed || fail
		mu.Unlock()
		if !fail {
			return handlerRT{h}.RoundTrip(req)
		}
		time.Sleep(300 * time.Millisecond)
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	})
}

// TestRateLimitNewWindowScoutFailed: as in
// TestRateLimitLowWindowNewWindowBurst, a batch of 50 calls is made a
// minute into the next hour of a quota of 100 an hour, the old window's
// last count 1 left, and the host answers in 300 ms; but the first
// request of the batch, the new window's scout, is answered 500 without a
// count, or fails without an answer (a connection reset). The others,
// which the server takes, are answered, as a plain client's would be, but
// for the one that failed; retried, it is answered too.
func TestRateLimitNewWindowScoutFailed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		base    func(h http.Handler, from time.Time) http.RoundTripper
		retries bool // the default's; none without
		sent    int
	}{
		{"answered 500", func(h http.Handler, from time.Time) http.RoundTripper {
			return handlerRT{&failFirstAfter{h: h, from: from}}
		}, false, 49},
		{"answered 500, retried", func(h http.Handler, from time.Time) http.RoundTripper {
			return handlerRT{&failFirstAfter{h: h, from: from}}
		}, true, 50},
		{"connection reset", resetFirstAfter, false, 49},
		{"connection reset, retried", resetFirstAfter, true, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				var opts []Option
				if !tc.retries {
					opts = append(opts, WithMaxRetries(0))
				}
				client := &http.Client{Transport: New(tc.base(srv, start.Add(61*time.Minute)), opts...)}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				sent, failed, refused := tallyScoutBatch(t, client)
				if sent != tc.sent || failed != 50-tc.sent {
					t.Errorf("batch of 50 in a new window of 100, its scout failed: %d sent, %d failed, %d refused; want %d sent and %d failed, as a plain client's", sent, failed, refused, tc.sent, 50-tc.sent)
				}
			})
		})
	}
}

// TestRateLimitSpentQuotaScoutFailed: a host's quota of 100 an hour is
// spent ten seconds before the hour is over (the last answer: none left,
// reset in 10 s), or one second before, and a batch of 50 calls is made
// then, which the quota's gate holds to its reset. The first request sent
// at or after the reset, the new window's scout, is answered 500 without a
// count, or fails without an answer (a connection reset). The others,
// which the server takes, are answered, as a plain client's would be, but
// for the one that failed. (Spent one second before the reset, the pace's
// bucket holds no token at it, its turns 36 s apart: no attempt was sent
// at the reset, and those whose turn passed the bound were refused at
// once, 41 of 50, though none was sent since the window began. Now, when
// no turn comes first, the first of them goes as the scout halfway
// through the wait for its answer: see rateLimiter.nextScout.)
func TestRateLimitSpentQuotaScoutFailed(t *testing.T) {
	for _, tc := range []struct {
		name string
		base func(h http.Handler, from time.Time) http.RoundTripper
		sent int
	}{
		{"answered", func(h http.Handler, _ time.Time) http.RoundTripper { return handlerRT{h} }, 50},
		{"answered 500", func(h http.Handler, from time.Time) http.RoundTripper {
			return handlerRT{&failFirstAfter{h: h, from: from}}
		}, 49},
		{"connection reset", resetFirstAfter, 49},
	} {
		for _, before := range []time.Duration{10 * time.Second, time.Second} {
			t.Run(tc.name+"/spent "+before.String()+" before the reset", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					start := time.Now().Truncate(time.Hour)
					srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
					client := &http.Client{Transport: New(tc.base(srv, start.Add(time.Hour)), WithMaxRetries(0))}
					useFirstHour(t, client, start, 99)
					time.Sleep(time.Until(start.Add(time.Hour - before)))
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
						t.Fatalf("last call of the first hour: %d, %v", code, err)
					}
					sent, failed, refused := tallyScoutBatch(t, client)
					srv.mu.Lock()
					defer srv.mu.Unlock()
					if sent != tc.sent || failed != 50-tc.sent || srv.throttled[0]+srv.throttled[1] != 0 {
						t.Errorf("batch of 50 held to a spent quota's reset: %d sent, %d failed, %d refused, %d 429s; want %d sent and %d failed, as a plain client's, and no 429", sent, failed, refused, srv.throttled[0]+srv.throttled[1], tc.sent, 50-tc.sent)
					}
				})
			})
		}
	}
}

// TestQuotaStoreNewWindowScoutFailedTakesTokens: as in
// TestRateLimitSpentQuotaScoutFailed and TestRateLimitNewWindowScoutFailed,
// a batch of 50 calls comes as a window begins, held by a spent quota's
// reset or after the last count's window is over, and the new window's
// first request is answered 500 without a count; but the Transport shares
// the quota through a QuotaStore. The store paces the fleet, and no
// attempt goes as the next scout without its token (see unheardSince, the
// local pace's): every request the host got took one of the store's.
func TestQuotaStoreNewWindowScoutFailedTakesTokens(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch time.Duration // into the first hour
		last  time.Duration // of the first hour's last call
	}{
		{"held by a spent quota's reset", time.Hour - 10*time.Second, time.Hour - 10*time.Second},
		{"after the window is over", 61 * time.Minute, 50 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				failing := &failFirstAfter{h: srv, from: start.Add(time.Hour)}
				var hits atomic.Int64
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					return handlerRT{failing}.RoundTrip(req)
				})
				store := new(memQuota)
				client := &http.Client{Transport: New(base, WithQuotaStore(store), WithMaxRetries(0))}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(start.Add(tc.last)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("last call of the first hour: %d, %v", code, err)
				}
				time.Sleep(time.Until(start.Add(tc.batch)))
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() { do(t, client, "GET", "http://api.test/x") })
				}
				wg.Wait()
				takes := 0
				store.mu.Lock()
				for _, p := range store.parts {
					p.mu.Lock()
					takes += p.takes
					p.mu.Unlock()
				}
				store.mu.Unlock()
				if n := hits.Load(); int64(takes) < n {
					t.Errorf("the host got %d requests, the store handed out %d tokens; want a token for each request", n, takes)
				}
			})
		})
	}
}

// TestRateLimitNewWindowScoutPaused: as in TestRateLimitNewWindowScoutFailed,
// but the new window's scout is answered 429 with a Retry-After of 30 s and
// no count (or 503 with one of 10 s). The attempts that waited for its
// answer are held by that pause, as those that come after it are: the host
// gets no request until it ends, though no answer since the window began
// told of its quota (see unheardSince). Once it ends, the first attempt
// whose turn of the old window's pace passes the bound goes as the next
// scout, and the others are sent when its answer fills the pace's bucket.
// (They were refused at once, 45 of 50 after the 429's pause, 41 after the
// 503's: nothing had been sent since the pause ended, and the count the
// pause replaced was forgotten.)
func TestRateLimitNewWindowScoutPaused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		pause  time.Duration
	}{
		{"429", http.StatusTooManyRequests, 30 * time.Second},
		{"503", http.StatusServiceUnavailable, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				var paused time.Time // the scout's answer's
				var mu sync.Mutex
				var early []time.Duration // requests sent in the pause, after its start
				scout := &failFirstAfter{h: srv, from: start.Add(61 * time.Minute), answer: func(w http.ResponseWriter) {
					mu.Lock()
					paused = time.Now()
					mu.Unlock()
					w.Header().Set("Retry-After", strconv.Itoa(int(tc.pause/time.Second)))
					w.WriteHeader(tc.status)
				}}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					if !paused.IsZero() && time.Since(paused) < tc.pause {
						early = append(early, time.Since(paused))
					}
					mu.Unlock()
					return handlerRT{scout}.RoundTrip(req)
				})
				client := &http.Client{Transport: New(base, WithMaxRetries(0))}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				var sent, scouted, refused int
				eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
					switch code {
					case 200:
						sent++
					case tc.status:
						scouted++
					default:
						refused++
						if refused == 1 {
							t.Logf("refused: %d, %v", code, err)
						}
					}
				})
				mu.Lock()
				defer mu.Unlock()
				if paused.IsZero() {
					t.Fatal("no scout answered: the case tests nothing")
				}
				if len(early) != 0 {
					t.Errorf("%d requests sent in the %v pause the scout's answer announced (the first %v into it); want none", len(early), tc.pause, early[0])
				}
				if sent != 49 || scouted != 1 {
					t.Errorf("batch of 50 in a new window of 100, its scout answered %d: %d sent, %d answered %d, %d refused; want the others sent once the pause is over, 49, as a plain client's that waits it out", tc.status, sent, scouted, tc.status, refused)
				}
			})
		})
	}
}

// TestRateLimitNewWindowPausedOthersCounted: as in
// TestRateLimitNewWindowScoutPaused, but the old window's last count is 5
// left, so the batch's first 5 requests go together a minute into the new
// hour. The first of them is answered at once 429 with a Retry-After of
// 30 s and no count; the other 4 are answered 600 ms later, each with the
// new window's count (Remaining 95 and more, no reset). Those counts, of
// requests sent once the old window was over, fill the pace's bucket,
// though the pause came before them: the 45 attempts it held are sent
// when it ends, as a plain client's that waits it out. (The pause had
// replaced the count whose window was over: the counts that followed
// filled nothing, and 40 of the 45 were refused, their turns of the old
// window's pace past the bound, an answer since the window began having
// told of its quota.)
func TestRateLimitNewWindowPausedOthersCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().Truncate(time.Hour)
		srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 600 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
		var mu sync.Mutex
		var paused time.Time // the 429's
		var early int        // requests sent in its pause
		scout := &failFirstAfter{h: srv, from: start.Add(61 * time.Minute), answer: func(w http.ResponseWriter) {
			mu.Lock()
			paused = time.Now()
			mu.Unlock()
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}}
		scout.at = time.Nanosecond
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			if !paused.IsZero() && time.Since(paused) < 30*time.Second {
				early++
			}
			mu.Unlock()
			return handlerRT{scout}.RoundTrip(req)
		})
		client := &http.Client{Transport: New(base, WithMaxRetries(0))}
		useFirstHour(t, client, start, 95)
		time.Sleep(time.Until(start.Add(61 * time.Minute)))
		counts := map[int]int{}
		eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
			counts[code]++
			if code == 0 && counts[0] == 1 {
				t.Logf("refused: %v", err)
			}
		})
		mu.Lock()
		defer mu.Unlock()
		if paused.IsZero() {
			t.Fatal("no request answered 429: the case tests nothing")
		}
		if counts[200] != 49 || counts[429] != 1 || early != 0 {
			t.Errorf("batch of 50 in a new window of 100, its first request answered 429 (Retry-After: 30): %v (0: refused), %d sent in the pause; want 49 answered 200, 1 429, none sent in the pause", counts, early)
		}
	})
}

// TestRateLimitNewWindowScoutRetryAfterNoPause: as in
// TestRateLimitNewWindowScoutPaused, but the scout's Retry-After sets no
// pause: a 200's (only a throttled or unavailable response's is read), or
// a 503's longer than WithMaxRetryAfter (the host is down, not out of
// quota: see update). The attempts that waited for the scout's answer go
// on as the next scouts, as after a 500 (see unheardSince): the batch is
// answered as a plain client's, but for the scout's call, each call within
// WithMaxRetryAfter and its answer, the host gets no more requests than a
// plain client's, and no attempt stays counted in flight.
func TestRateLimitNewWindowScoutRetryAfterNoPause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		after  string
		sent   int // answered 200
	}{
		{"200", http.StatusOK, "30", 50},
		{"503, longer than WithMaxRetryAfter", http.StatusServiceUnavailable, "120", 49},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				scout := &failFirstAfter{h: srv, from: start.Add(61 * time.Minute), answer: func(w http.ResponseWriter) {
					w.Header().Set("Retry-After", tc.after)
					w.WriteHeader(tc.status)
				}}
				var hits atomic.Int64 // of the batch
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if !time.Now().Before(start.Add(61 * time.Minute)) {
						hits.Add(1)
					}
					return handlerRT{scout}.RoundTrip(req)
				})
				tr := New(base, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(start.Add(61 * time.Minute)))
				counts := map[int]int{}
				var longest time.Duration
				eachOfBatch(t, client, 50, func(code int, err error, took time.Duration) {
					longest = max(longest, took)
					counts[code]++
					if code == 0 && counts[0] == 1 {
						t.Logf("refused: %v", err)
					}
				})
				t.Logf("%v (0: refused); the host got %d requests; longest call %v", counts, hits.Load(), longest)
				if counts[200] != tc.sent || tc.status != http.StatusOK && counts[tc.status] != 50-tc.sent {
					t.Errorf("batch of 50 in a new window of 100, its scout answered %d with Retry-After %s: %v (0: refused); want %d answered 200, the scout's call %d, as a plain client's", tc.status, tc.after, counts, tc.sent, tc.status)
				}
				if n := hits.Load(); n > 50 {
					t.Errorf("the host got %d requests; want 50 at most, as a plain client's", n)
				}
				if bound := time.Minute + 300*time.Millisecond; longest > bound {
					t.Errorf("a call took %v; want %v at most (WithMaxRetryAfter and an answer)", longest, bound)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}

// eachOfBatch makes n calls through client at once, and hands each
// call's status, error and time taken to tell, one call at a time.
func eachOfBatch(t *testing.T, client *http.Client, n int, tell func(code int, err error, took time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			began := time.Now()
			code, err := do(t, client, "GET", "http://api.test/x")
			took := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			tell(code, err, took)
		})
	}
	wg.Wait()
}

// tallyScoutBatch makes a batch of 50 calls through client at once (see
// eachOfBatch), and counts those answered 200 (sent), those whose scout
// failed (a 500, or a connection reset), and the others (refused), the
// first of which it logs.
func tallyScoutBatch(t *testing.T, client *http.Client) (sent, failed, refused int) {
	t.Helper()
	eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
		switch {
		case code == 200:
			sent++
		case code == 500, errors.Is(err, syscall.ECONNRESET):
			failed++
		default:
			refused++
			if refused == 1 {
				t.Logf("refused: %d, %v", code, err)
			}
		}
	})
	return sent, failed, refused
}

// checkNoneInFlight fails t when a partition of tr's rate limiter still
// counts an attempt in flight.
func checkNoneInFlight(t *testing.T, tr *Transport) {
	t.Helper()
	rl := rlOf(t, tr)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.each(func(p *partition) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inflight != 0 {
			t.Errorf("%s: %d in flight; want none", p.key, p.inflight)
		}
	})
}
