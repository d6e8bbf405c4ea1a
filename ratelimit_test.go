package resilient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/internal/wallclock"
	"github.com/resilienthttp/resilient/resilienttest"
	"golang.org/x/time/rate"
)

// lockedRand is a seeded source of jitter safe for concurrent use.
func lockedRand(seed uint64) func(int64) int64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Int64N(n)
	}
}

// handlerRT calls an http.Handler in process: the lightest in-memory
// transport, for tests that do not need a real http.Transport. As a server
// does, it gives the handler a non-nil Body (http.NoBody for none).
type handlerRT struct{ h http.Handler }

func (rt handlerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	sreq := req
	if req.Body == nil {
		r := *req
		r.Body = http.NoBody
		sreq = &r
	}
	rec := httptest.NewRecorder()
	rt.h.ServeHTTP(rec, sreq)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// quotaRun is the result of hammering a quota server.
type quotaRun struct {
	ok, limited int
	elapsed     time.Duration
	share429    float64 // 429s per attempt
	used        float64 // successes per quota available during the run
	failures    int     // calls that did not end in a 200
}

// hammer sends total GETs of srv's post list through client from
// goroutines goroutines and measures what srv, enforcing q, saw.
func hammer(client *http.Client, srv *resilienttest.Server, q resilienttest.Quota, goroutines, total int) quotaRun {
	start := time.Now()
	var failures, next atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				resp, err := client.Get(srv.URL + "/v1/posts")
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r := quotaRun{elapsed: time.Since(start), failures: int(failures.Load())}
	st := srv.Stats()
	r.ok, r.limited = st.Requests-st.RateLimited, st.RateLimited
	if r.ok+r.limited > 0 {
		r.share429 = float64(r.limited) / float64(r.ok+r.limited)
	}
	if quota := float64(q.Limit) * float64(r.elapsed) / float64(q.Window); quota > 0 {
		r.used = float64(r.ok) / quota
	}
	return r
}

// quotaFormats are the header formats of the quota proof.
var quotaFormats = []struct {
	name   string
	format resilienttest.ResetFormat
}{
	{"X-RateLimit, Unix seconds", resilienttest.UnixSeconds},
	{"X-RateLimit, Unix milliseconds", resilienttest.UnixMillis},
	{"X-RateLimit, seconds from now", resilienttest.DeltaSeconds},
	{"X-RateLimit, RFC 3339", resilienttest.RFC3339},
	{"X-Rate-Limit, Unix seconds", resilienttest.XRateLimitDash},
	{"IETF RateLimit and RateLimit-Policy", resilienttest.IETF},
}

// TestRateLimitQuota is the proof of the limiter: 16 goroutines × 150 GETs
// against a server allowing 30 requests per second and per class, through
// the default chain over a real http.Transport, see at most 2% of 429s and
// use at least 90% of the quota, in every header format. It runs 80 s of
// fake time on a resilienttest pipe server, whose one-second windows start
// with the bubble, on a whole second.
func TestRateLimitQuota(t *testing.T) {
	for i, f := range quotaFormats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				q := resilienttest.Quota{Limit: 30, Window: time.Second, PerClass: true, ResetFormat: f.format}
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithQuota(q))
				defer srv.Close()
				client := &http.Client{Transport: New(srv.Transport(), withRand(lockedRand(uint64(i))))}
				r := hammer(client, srv, q, 16, 16*150)
				t.Logf("%d ok, %d 429 (%.2f%% of attempts), %v, %.1f%% of the quota used",
					r.ok, r.limited, 100*r.share429, r.elapsed, 100*r.used)
				if r.failures > 0 {
					t.Errorf("%d calls did not end in a 200", r.failures)
				}
				if r.ok != 16*150 {
					t.Errorf("server answered %d successes, want %d", r.ok, 16*150)
				}
				if r.share429 > 0.02 {
					t.Errorf("429 share = %.2f%%, want at most 2%%", 100*r.share429)
				}
				if r.used < 0.90 {
					t.Errorf("quota used = %.1f%%, want at least 90%%", 100*r.used)
				}
			})
		})
	}
}

// recServer records the arrival of every request and answers with fn,
// which receives the index of the request (0 for the first).
type recServer struct {
	fn func(w http.ResponseWriter, r *http.Request, n int)

	mu       sync.Mutex
	arrivals []arrival
}

type arrival struct {
	at     time.Time
	method string
	host   string
	path   string
}

func (s *recServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.arrivals)
	s.arrivals = append(s.arrivals, arrival{time.Now(), r.Method, r.URL.Host, r.URL.Path})
	s.mu.Unlock()
	if s.fn != nil {
		s.fn(w, r, n)
	}
}

// seen returns the arrivals so far whose path is path ("" for all).
func (s *recServer) seen(path string) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrival
	for _, a := range s.arrivals {
		if path == "" || a.path == path {
			out = append(out, a)
		}
	}
	return out
}

// observed collects the Attempts given to an observer, with its add
// method.
type observed struct{ collector[Attempt] }

// path returns the attempts collected so far whose path is p.
func (o *observed) path(p string) []Attempt {
	var out []Attempt
	for _, a := range o.all() {
		if a.Path == p {
			out = append(out, a)
		}
	}
	return out
}

// do sends a request through client and returns its status, or 0 and the
// error.
func do(t *testing.T, client *http.Client, method, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// rlOf returns the rate limiter of tr's chain.
func rlOf(t *testing.T, tr *Transport) *rateLimiter {
	t.Helper()
	m, ok := tr.inner.rt.(*rateLimitTransport)
	if !ok {
		t.Fatalf("outermost middleware is %T, want *rateLimitTransport", tr.inner.rt)
	}
	return m.rl
}

// within reports whether d is in [lo, hi].
func within(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }

func throttle(w http.ResponseWriter, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(http.StatusTooManyRequests)
}

// throttledOnce returns a recServer that answers its first request 429
// with Retry-After retryAfter, and the others 200.
func throttledOnce(retryAfter string) *recServer {
	return &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			throttle(w, retryAfter)
		}
	}}
}

// TestRateLimitPauseHoldsPartition: a 429 with Retry-After on one goroutine
// pauses its partition: the others wait, the server sees nothing during the
// pause, even when a response in flight announces fresh quota during it;
// the throttled request's retry waits the same pause, and another host is
// not held.
func TestRateLimitPauseHoldsPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var throttled atomic.Bool
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			switch {
			case r.URL.Path == "/slow":
				time.Sleep(2 * time.Second)
				w.Header().Set("X-RateLimit-Remaining", "50")
				w.Header().Set("X-RateLimit-Reset", "60")
			case r.URL.Path == "/first" && !throttled.Swap(true):
				throttle(w, "5")
			}
		}}
		var obs observed
		client := &http.Client{Transport: New(handlerRT{srv}, withRand(lockedRand(1)), WithObserver(obs.add))}

		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/slow") })
		synctest.Wait()
		wg.Go(func() {
			if code, err := do(t, client, "GET", "http://api.test/first"); code != 200 {
				t.Errorf("first call: %d, %v; want 200 after its retry", code, err)
			}
		})
		synctest.Wait()
		time.Sleep(time.Second)
		for range 10 {
			wg.Go(func() {
				if code, err := do(t, client, "GET", "http://api.test/other"); code != 200 {
					t.Errorf("held call: %d, %v", code, err)
				}
			})
		}
		wg.Go(func() { do(t, client, "GET", "http://elsewhere.test/free") })
		wg.Wait()

		for _, a := range srv.seen("") {
			d := a.at.Sub(t0)
			switch {
			case a.path == "/free":
				if d != time.Second {
					t.Errorf("another host was held: arrived at %v, want 1s", d)
				}
			case a.path == "/slow":
			case d > 0 && d < 5*time.Second:
				t.Errorf("%s %s reached the server at %v, during the pause [0, 5s)", a.method, a.path, d)
			}
		}
		if n := len(srv.seen("/other")); n != 10 {
			t.Errorf("server saw %d held calls, want 10", n)
		}
		first := obs.path("/first")
		if len(first) != 2 {
			t.Fatalf("first call: %d attempts, want 2", len(first))
		}
		if a := first[0]; a.RetryAfter != 5*time.Second || !a.RateLimit.Reset.Equal(t0.Add(5*time.Second)) || !within(a.Delay, 5*time.Second, 5500*time.Millisecond) {
			t.Errorf("throttled attempt: RetryAfter %v, Reset %v, Delay %v; want 5s, t0+5s, 5s..5.5s", a.RetryAfter, a.RateLimit.Reset.Sub(t0), a.Delay)
		}
		for _, a := range obs.path("/other") {
			if !within(a.LocalWait, 4*time.Second, 4500*time.Millisecond) {
				t.Errorf("held attempt waited %v locally, want 4s..4.5s", a.LocalWait)
			}
		}
	})
}

// TestRateLimitReadsPausedWritesFlow: a pause of the read class does not
// hold writes to the same host.
func TestRateLimitReadsPausedWritesFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := throttledOnce("5")
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), withRand(lockedRand(2)))}
		if code, _ := do(t, client, "GET", "http://api.test/read"); code != 429 {
			t.Fatalf("first read: %d, want 429", code)
		}
		time.Sleep(time.Second)
		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/read2") })
		wg.Go(func() { do(t, client, "POST", "http://api.test/write") })
		wg.Go(func() { do(t, client, "DELETE", "http://api.test/write") })
		wg.Wait()
		for _, a := range srv.seen("/write") {
			if d := a.at.Sub(t0); d != time.Second {
				t.Errorf("%s held by the read pause: arrived at %v, want 1s", a.method, d)
			}
		}
		if r := srv.seen("/read2"); len(r) != 1 || r[0].at.Sub(t0) < 5*time.Second {
			t.Errorf("read during the read pause: %v", r)
		}
	})
}

// TestRateLimitDeadlineFailsFast: a wait that would pass the context's
// deadline fails at once with ErrRateLimited, says how long it would have
// been, and closes the request body; through the Transport and through the
// middleware alone.
func TestRateLimitDeadlineFailsFast(t *testing.T) {
	t.Run("transport", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var obs observed
			client := &http.Client{Transport: New(handlerRT{throttledOnce("30")}, WithMaxRetries(0), WithObserver(obs.add))}
			if code, _ := do(t, client, "POST", "http://api.test/v1/posts"); code != 429 {
				t.Fatalf("first write: %d, want 429", code)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			body := newTrackedBody(`{"text":"hi"}`)
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://api.test/v1/posts", body)
			start := time.Now()
			resp, err := client.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, ErrRateLimited) {
				t.Fatalf("err = %v, want ErrRateLimited", err)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("failed after %v, want at once", d)
			}
			if msg := err.Error(); !strings.Contains(msg, "http://api.test writes: would wait 30") || !strings.Contains(msg, "deadline") {
				t.Errorf("err = %q, want the partition and the wait", msg)
			}
			if !body.isClosed() {
				t.Error("request body not closed")
			}
			if a := obs.path("/v1/posts"); len(a) != 2 || a[1].Outcome != OutcomeRateLimited {
				t.Errorf("attempts = %+v, want the second rate_limited_locally", a)
			}
		})
	})
	t.Run("call budget", func(t *testing.T) {
		// No context deadline: the call's WithMaxElapsed budget bounds the
		// wait just the same.
		synctest.Test(t, func(t *testing.T) {
			client := &http.Client{Transport: New(handlerRT{throttledOnce("30")}, WithMaxRetries(0), WithMaxElapsed(10*time.Second))}
			if code, _ := do(t, client, "GET", "http://api.test/v1/posts"); code != 429 {
				t.Fatalf("first read: %d, want 429", code)
			}
			start := time.Now()
			resp, err := client.Get("http://api.test/v1/posts")
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, ErrRateLimited) || time.Since(start) != 0 {
				t.Fatalf("err = %v after %v, want ErrRateLimited at once", err, time.Since(start))
			}
		})
	})
	t.Run("middleware alone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rt := New(nil).rateLimitMiddleware()(handlerRT{throttledOnce("30")})
			req, _ := http.NewRequest("GET", "http://api.test/x", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != 429 {
				t.Fatalf("first: %v, %v", resp, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			body := newTrackedBody("x")
			req, _ = http.NewRequestWithContext(ctx, "GET", "http://api.test/x", body)
			resp, err = rt.RoundTrip(req)
			if resp != nil || !errors.Is(err, ErrRateLimited) {
				t.Fatalf("RoundTrip = %v, %v; want nil, ErrRateLimited", resp, err)
			}
			if !body.isClosed() {
				t.Error("request body not closed")
			}
			// Without a deadline it waits the pause out.
			req, _ = http.NewRequest("GET", "http://api.test/x", nil)
			start := time.Now()
			resp, err = rt.RoundTrip(req)
			if err != nil || resp.StatusCode != 200 || !within(time.Since(start), 30*time.Second, 31*time.Second) {
				t.Errorf("after the pause: %v, %v after %v", resp, err, time.Since(start))
			}
		})
	})
	t.Run("canceled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client := &http.Client{Transport: New(handlerRT{throttledOnce("30")}, WithMaxRetries(0))}
			do(t, client, "GET", "http://api.test/x")
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(3*time.Second, cancel)
			body := newTrackedBody("x")
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/x", body)
			start := time.Now()
			_, err := client.Do(req)
			if !errors.Is(err, context.Canceled) || time.Since(start) != 3*time.Second {
				t.Errorf("err = %v after %v, want context.Canceled after 3s", err, time.Since(start))
			}
			if !body.isClosed() {
				t.Error("request body not closed")
			}
		})
	})
}

// TestRateLimitLongPauseRefused: a server-announced wait longer than
// WithMaxRetryAfter is refused at once instead of blocking callers without
// a deadline; a longer limit lets them wait.
func TestRateLimitLongPauseRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := throttledOnce("120")
		client := &http.Client{Transport: New(handlerRT{srv})}
		if code, _ := do(t, client, "GET", "http://api.test/x"); code != 429 {
			t.Fatalf("first: %d, want the 429 returned at once", code)
		}
		_, err := do(t, client, "GET", "http://api.test/x")
		if !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "would wait 2m0s") {
			t.Errorf("err = %v, want ErrRateLimited, would wait 2m0s", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		srv := throttledOnce("120")
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetryAfter(5*time.Minute))}
		start := time.Now()
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || !within(time.Since(start), 2*time.Minute, 2*time.Minute+time.Second) {
			t.Errorf("with a 5m limit: %d, %v after %v; want 200 after 2m", code, err, time.Since(start))
		}
	})
}

// TestRateLimitMalformedHeaders: malformed rate-limit values change
// nothing: no partition, no wait, nothing reported.
func TestRateLimitMalformedHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			h := w.Header()
			h.Set("X-RateLimit-Limit", "many")
			h.Set("X-RateLimit-Remaining", "-3")
			h.Set("X-RateLimit-Reset", "tomorrow")
			h.Set("RateLimit", `;;"x`)
			h.Set("RateLimit-Policy", `q=;w=`)
			if n%2 == 1 {
				h.Set("Retry-After", "soon")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		}}
		var obs observed
		tr := New(handlerRT{srv}, WithMaxRetries(0), WithObserver(obs.add))
		client := &http.Client{Transport: tr}
		start := time.Now()
		for range 20 {
			do(t, client, "GET", "http://api.test/x")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("20 calls took %v, want no wait", d)
		}
		if n := rlOf(t, tr).len(); n != 0 {
			t.Errorf("%d partitions, want 0", n)
		}
		for _, a := range obs.path("/x") {
			if a.RateLimit != (RateLimitInfo{-1, -1, time.Time{}}) || a.LocalWait != 0 {
				t.Errorf("attempt reported %+v, local wait %v; want nothing", a.RateLimit, a.LocalWait)
			}
		}
	})
}

// TestRateLimitRetryAfterWinsOverReset: the pause ends at Retry-After,
// whether the reset announced with it is earlier or later.
func TestRateLimitRetryAfterWinsOverReset(t *testing.T) {
	for _, tt := range []struct{ retryAfter, reset int }{{2, 10}, {10, 2}} {
		t.Run(fmt.Sprintf("Retry-After %d, reset %d", tt.retryAfter, tt.reset), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set("X-RateLimit-Limit", "10")
					w.Header().Set("X-RateLimit-Remaining", "0")
					w.Header().Set("X-RateLimit-Reset", strconv.Itoa(tt.reset))
					if n == 0 {
						throttle(w, strconv.Itoa(tt.retryAfter))
					}
				}}
				var obs observed
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), WithObserver(obs.add))}
				do(t, client, "GET", "http://api.test/first")
				do(t, client, "GET", "http://api.test/second")
				ra := time.Duration(tt.retryAfter) * time.Second
				if a := obs.path("/first"); len(a) != 1 || !a[0].RateLimit.Reset.Equal(t0.Add(ra)) {
					t.Errorf("reported reset %v, want t0+%v", a[0].RateLimit.Reset.Sub(t0), ra)
				}
				if s := srv.seen("/second"); len(s) != 1 || !within(s[0].at.Sub(t0), ra, ra+ra/10) {
					t.Errorf("second call arrived at %v, want %v..%v", s[0].at.Sub(t0), ra, ra+ra/10)
				}
			})
		})
	}
}

// TestRateLimitThrottledWaitsReset: a 429 without Retry-After but with a
// reset pauses the partition until the reset, and the loop retries the
// throttled request after the same wait.
func TestRateLimitThrottledWaitsReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", "3")
				throttle(w, "")
			}
		}}
		var obs observed
		client := &http.Client{Transport: New(handlerRT{srv}, withRand(lockedRand(3)), WithObserver(obs.add))}
		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/first") })
		synctest.Wait()
		time.Sleep(time.Second)
		do(t, client, "GET", "http://api.test/second")
		wg.Wait()
		a := obs.path("/first")
		if len(a) != 2 {
			t.Fatalf("first call: %d attempts, want 2", len(a))
		}
		if a[0].RetryAfter != 3*time.Second || !within(a[0].Delay, 3*time.Second, 3300*time.Millisecond) {
			t.Errorf("throttled attempt: RetryAfter %v, Delay %v; want 3s, 3s..3.3s", a[0].RetryAfter, a[0].Delay)
		}
		for _, s := range srv.seen("") {
			if d := s.at.Sub(t0); d > 0 && d < 3*time.Second {
				t.Errorf("%s arrived at %v, during the pause", s.path, d)
			}
		}
	})
}

// TestRateLimitRemainingZeroWaitsForReset: when the server announces no
// remaining quota, the next attempt waits for the reset, with a little
// jitter, and reports its wait.
func TestRateLimitRemainingZeroWaitsForReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		reset := t0.Add(4 * time.Second)
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Limit", "10")
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(0, 1-n)))
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.UnixMilli(), 10))
		}}
		var obs observed
		client := &http.Client{Transport: New(handlerRT{srv}, withRand(lockedRand(4)), WithObserver(obs.add))}
		for range 3 {
			do(t, client, "GET", "http://api.test/x")
		}
		s := srv.seen("")
		if s[1].at != t0 {
			t.Errorf("second call (1 remaining) arrived at %v, want at once", s[1].at.Sub(t0))
		}
		if d := s[2].at.Sub(t0); !within(d, 4*time.Second, 4400*time.Millisecond) {
			t.Errorf("third call (0 remaining) arrived at %v, want 4s..4.4s", d)
		}
		a := obs.path("/x")
		if a[1].RateLimit != (RateLimitInfo{10, 0, reset}) {
			t.Errorf("reported %+v, want {10 0 %v}", a[1].RateLimit, reset)
		}
		if a[2].LocalWait != s[2].at.Sub(t0) {
			t.Errorf("third attempt LocalWait = %v, want %v", a[2].LocalWait, s[2].at.Sub(t0))
		}
	})
}

// TestRateLimitInFlight: attempts in flight count against the remaining
// quota: with 2 remaining and 2 in flight, a third waits for the reset.
func TestRateLimitInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		reset := t0.Add(10 * time.Second)
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			time.Sleep(time.Second)
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(0, 2-n)))
			w.Header().Set("X-RateLimit-Reset", reset.Format(time.RFC3339))
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, withRand(lockedRand(5)))}
		do(t, client, "GET", "http://api.test/x")
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { do(t, client, "GET", "http://api.test/x") })
		}
		wg.Wait()
		s := srv.seen("")
		if len(s) != 4 || s[1].at.Sub(t0) != time.Second || s[2].at.Sub(t0) != time.Second || !within(s[3].at.Sub(t0), 10*time.Second, 11*time.Second) {
			for _, a := range s {
				t.Logf("arrival at %v", a.at.Sub(t0))
			}
			t.Error("want two at 1s and the third at the reset (10s)")
		}
	})
}

// TestRateLimitReopens: attempts waiting for a spent quota do not sleep
// until the announced reset when a response in flight announces a new
// window, or an attempt in flight fails: they go at once.
func TestRateLimitReopens(t *testing.T) {
	for _, newWindow := range []bool{true, false} {
		t.Run(fmt.Sprintf("new window %v", newWindow), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if r.URL.Path == "/slow" {
						time.Sleep(2 * time.Second)
						// A new window, announced as seconds from now.
						w.Header().Set("X-RateLimit-Remaining", "29")
						w.Header().Set("X-RateLimit-Reset", "11")
						return
					}
					w.Header().Set("X-RateLimit-Remaining", "1")
					w.Header().Set("X-RateLimit-Reset", "10")
				}}
				base := http.RoundTripper(handlerRT{srv})
				if !newWindow {
					base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
						if r.URL.Path == "/slow" {
							time.Sleep(2 * time.Second)
							return nil, errors.New("connection reset by peer")
						}
						return handlerRT{srv}.RoundTrip(r)
					})
				}
				client := &http.Client{Transport: New(base, WithMaxRetries(0))}
				do(t, client, "GET", "http://api.test/first") // 1 remaining
				var wg sync.WaitGroup
				wg.Go(func() { do(t, client, "GET", "http://api.test/slow") }) // takes the last one
				synctest.Wait()
				do(t, client, "GET", "http://api.test/waiter")
				wg.Wait()
				if w := srv.seen("/waiter"); len(w) != 1 || w[0].at.Sub(t0) != 2*time.Second {
					t.Errorf("waiter arrived at %v, want 2s (when the slow attempt ended)", w[0].at.Sub(t0))
				}
			})
		})
	}
}

// TestRateLimitStatic: WithRateLimit paces each partition on its own.
func TestRateLimitStatic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(10, 1))}
		var wg sync.WaitGroup
		for _, target := range []string{"GET http://a.test/", "GET http://b.test/", "POST http://a.test/"} {
			method, url, _ := strings.Cut(target, " ")
			wg.Go(func() {
				for range 11 {
					do(t, client, method, url)
				}
			})
		}
		wg.Wait()
		if d := time.Since(t0); d != time.Second {
			t.Errorf("3 partitions × 11 calls at 10/s took %v, want 1s (in parallel)", d)
		}
		last := map[string]time.Time{}
		for _, a := range srv.seen("") {
			k := a.method + " " + a.host
			if p, ok := last[k]; ok && a.at.Sub(p) < 100*time.Millisecond {
				t.Errorf("%s: %v between calls, want at least 100ms", k, a.at.Sub(p))
			}
			last[k] = a.at
		}
	})
}

// TestRateLimitStaticAndLearned: with a static limit and an announced
// quota, the lower rate and the smaller burst apply; an announced quota
// alone starts with a full bucket of the remaining quota.
func TestRateLimitStaticAndLearned(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   []Option
		policy string
		gaps   []time.Duration // between the arrivals of 6 sequential calls
	}{
		{"server stricter", []Option{WithRateLimit(50, 1)}, `"p";q=10;w=1`, // 9.5/s
			[]time.Duration{0, 105263157, 105263158, 105263158, 105263157, 105263158}},
		{"static stricter", []Option{WithRateLimit(5, 1)}, `"p";q=100;w=1`,
			[]time.Duration{0, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}},
		{"server alone: bursts of the remaining quota", nil, `"p";q=3;w=1`, // 2.85/s, 3 remaining
			[]time.Duration{0, 0, 0, 350877192, 350877193, 350877193}},
		// rate.Inf sets no static limit, as by default: its burst, unused,
		// does not cap the learned pace's.
		{"static infinite: as none", []Option{WithRateLimit(rate.Inf, 0)}, `"p";q=3;w=1`,
			[]time.Duration{0, 0, 0, 350877192, 350877193, 350877193}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set("RateLimit", `"p";r=3;t=1`)
					w.Header().Set("RateLimit-Policy", tt.policy)
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, tt.opts...)}
				do(t, client, "GET", "http://api.test/") // learn
				for range 6 {
					do(t, client, "GET", "http://api.test/")
				}
				s := srv.seen("")[1:]
				if len(s) != len(tt.gaps) {
					t.Fatalf("the server saw %d of the 6 calls", len(s))
				}
				for i := 1; i < len(s); i++ {
					if gap := s[i].at.Sub(s[i-1].at); gap < tt.gaps[i]-time.Millisecond || gap > tt.gaps[i]+time.Millisecond {
						t.Errorf("gap before call %d = %v, want %v", i+1, gap, tt.gaps[i])
					}
				}
			})
		})
	}
}

// TestWithoutRateLimit: the middleware is off: no learning, no waiting.
func TestWithoutRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "10")
		}}
		var obs observed
		tr := New(handlerRT{srv}, WithRateLimit(1, 1), WithoutRateLimit(), WithObserver(obs.add))
		if _, ok := tr.inner.rt.(*rateLimitTransport); ok {
			t.Fatal("the rate limiter is in the chain")
		}
		client := &http.Client{Transport: tr}
		start := time.Now()
		for range 3 {
			do(t, client, "GET", "http://api.test/x")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("3 calls took %v, want no wait", d)
		}
		if a := obs.path("/x"); a[0].RateLimit != (RateLimitInfo{-1, -1, time.Time{}}) {
			t.Errorf("reported %+v, want nothing", a[0].RateLimit)
		}
	})
}

// TestWithoutRateLimitWaitsForTheReset: without the rate limiter, the
// retry of a 429 that gives no Retry-After waits for the quota's reset, as
// the limiter's pause would have held it, instead of hammering the server
// with the backoff's short waits while its quota is spent; a reset beyond
// WithMaxRetryAfter returns the 429 at once, as a plain client would; a
// reset of a quota not spent waits a minute at most (another limit threw).
func TestWithoutRateLimitWaitsForTheReset(t *testing.T) {
	tests := []struct {
		name      string
		header    http.Header
		wantCalls int
		wantWait  time.Duration // between the two attempts; jitter adds up to 10% and a second
	}{
		{"spent, reset in seconds", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"20"}}, 2, 20 * time.Second},
		{"reset, remaining not announced", http.Header{"Ratelimit-Reset": {"30"}}, 2, 30 * time.Second},
		{"spent, reset past WithMaxRetryAfter", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3600"}}, 1, 0},
		{"not spent: another limit", http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"4000"}, "X-Ratelimit-Reset": {"3000"}}, 2, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			throttledRetryWait(t, []Option{WithoutRateLimit()}, tc.header, tc.wantCalls, tc.wantWait)
		})
	}
}

// TestRateLimitExemptWaitsForTheReset: the retry of a throttled answer
// without a Retry-After waits for its quota's reset, read as the limiter
// reads it (a WithRateLimitParser's too), whichever way the request goes
// without the limiter: WithoutRateLimit, or a WithRateLimitKey that
// exempts it. A request the key exempted, and one whose reset only a
// parser read, were retried after the backoff's second while the quota was
// spent, and a reset an hour away was retried five times instead of
// returned.
func TestRateLimitExemptWaitsForTheReset(t *testing.T) {
	exempt := WithRateLimitKey(func(*http.Request) string { return "" })
	parser := WithRateLimitParser(func(h http.Header, now time.Time) (RateLimitInfo, bool) {
		v := h.Get("X-Quota-Wait")
		if v == "" {
			return RateLimitInfo{}, false
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return RateLimitInfo{}, false
		}
		return RateLimitInfo{Limit: -1, Remaining: 0, Reset: now.Add(d)}, true
	})
	spent := http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"20"}}
	tests := []struct {
		name      string
		opts      []Option
		header    http.Header
		wantCalls int
		wantWait  time.Duration // between the two attempts; jitter adds up to 10% and a second
	}{
		{"exempt, spent", []Option{exempt}, spent, 2, 20 * time.Second},
		{"exempt, reset past WithMaxRetryAfter", []Option{exempt}, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3600"}}, 1, 0},
		{"exempt, parser", []Option{exempt, parser}, http.Header{"X-Quota-Wait": {"30s"}}, 2, 30 * time.Second},
		{"without limiter, parser", []Option{WithoutRateLimit(), parser}, http.Header{"X-Quota-Wait": {"30s"}}, 2, 30 * time.Second},
		{"limited, parser", []Option{parser}, http.Header{"X-Quota-Wait": {"30s"}}, 2, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			throttledRetryWait(t, tc.opts, tc.header, tc.wantCalls, tc.wantWait)
		})
	}
}

// TestRateLimitKey: a custom key shares one partition across hosts and
// classes; an empty key exempts a request.
func TestRateLimitKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := throttledOnce("5")
		key := func(r *http.Request) string {
			if r.URL.Path == "/health" {
				return ""
			}
			return "account-1"
		}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimitKey(key), WithMaxRetries(0))}
		do(t, client, "GET", "http://a.test/x")
		do(t, client, "GET", "http://b.test/health")
		do(t, client, "POST", "http://b.test/y")
		s := srv.seen("")
		if s[1].at != t0 || s[2].at.Sub(t0) < 5*time.Second {
			t.Errorf("exempt call at %v (want 0), other host's write at %v (want ≥5s)", s[1].at.Sub(t0), s[2].at.Sub(t0))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		srv.fn = func(w http.ResponseWriter, r *http.Request, n int) { throttle(w, "5") }
		do(t, client, "GET", "http://a.test/x")
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://c.test/", nil)
		if _, err := client.Do(req); err == nil || !strings.Contains(err.Error(), "account-1: would wait") {
			t.Errorf("err = %v, want it to name the partition account-1", err)
		}
	})
}

// TestRateLimitBoundedPartitions: a client calling 100,000 hosts that all
// announce quotas keeps at most maxRatePartitions partitions, and idle
// partitions are dropped once their reset has passed.
func TestRateLimitBoundedPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(newCannedRT(200, http.Header{
			"X-Ratelimit-Limit":     {"100"},
			"X-Ratelimit-Remaining": {"99"},
			"X-Ratelimit-Reset":     {"60"},
		}))
		m := tr.inner.rt.(*rateLimitTransport)
		req, _ := http.NewRequest("GET", "http://h.test/", nil)
		req.Host = "" // sent with its URL's host, which the loop sets
		for i := range 100_000 {
			req.URL.Host = "h" + strconv.Itoa(i) + ".test"
			if _, err := m.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if i%1000 == 0 && m.rl.len() > maxRatePartitions {
				t.Fatalf("after %d hosts: %d partitions, want at most %d", i+1, m.rl.len(), maxRatePartitions)
			}
		}
		if n := m.rl.len(); n != maxRatePartitions {
			t.Errorf("after 100,000 hosts: %d partitions, want %d", n, maxRatePartitions)
		}
		time.Sleep(ratePartitionIdle + time.Minute)
		req.URL.Host = "busy.test"
		for range maxRatePartitions {
			m.RoundTrip(req)
		}
		if n := m.rl.len(); n != 1 {
			t.Errorf("after the idle time: %d partitions, want 1 (the busy one)", n)
		}
	})
}

// TestRateLimitIdleSweepMonotonic: the sweep of idle partitions measures
// idleness on the monotonic clock, as the rest of the Transport does, not
// on the wall clock, which NTP or a resumed virtual machine may step. A
// partition idle for 11 minutes is dropped after the wall clock stepped an
// hour back; after a step an hour forward, a lookup does not sweep (which
// takes the table's lock) for a partition used a minute ago. (Compared by
// UnixNano, the first was kept until the wall clock had caught up, an hour
// later; after the second, every lookup took the lock while the back of
// the list had not been idle for 10 minutes.)
func TestRateLimitIdleSweepMonotonic(t *testing.T) {
	a, b := partKey{scheme: "http", host: "a.test"}, partKey{scheme: "http", host: "b.test"}
	t.Run("stepped back", func(t *testing.T) {
		rl := rlOf(t, New(nil))
		start := time.Now()
		rl.lookup(a, true, &lazyNow{start})
		later := lazyNow{wallclock.Stepped(t, start.Add(ratePartitionIdle+time.Minute), -time.Hour)}
		rl.lookup(b, false, &later)
		if n := rl.len(); n != 0 {
			t.Errorf("%d partitions after %v idle, the wall clock stepped an hour back; want 0", n, ratePartitionIdle+time.Minute)
		}
	})
	t.Run("stepped forward", func(t *testing.T) {
		rl := rlOf(t, New(nil))
		start := time.Now()
		rl.lookup(a, true, &lazyNow{start})
		rl.lookup(a, false, &lazyNow{start}) // used: a sweep would give it a second chance, and clear this
		later := lazyNow{wallclock.Stepped(t, start.Add(time.Minute), time.Hour)}
		rl.lookup(b, false, &later)
		if !rl.part(a).used.Load() {
			t.Error("a lookup swept the partitions a minute after a use, the wall clock stepped an hour forward")
		}
	})
}

// TestRateLimitConcurrent: 100 goroutines over three hosts and both
// classes, with quotas, throttling and short deadlines, under -race. Every
// call ends in a 200 (a 201 for a write), in a 429 its deadline did not let
// it wait out, or in a local refusal; every partition ends with nothing in
// flight.
func TestRateLimitConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Called in process, as handlers: each server pauses 1 to 7 ms,
		// the length of the query, before answering.
		servers := map[string]*resilienttest.Server{}
		for host, format := range map[string]resilienttest.ResetFormat{
			"a.test": resilienttest.UnixMillis,
			"b.test": resilienttest.IETF,
			"c.test": resilienttest.DeltaSeconds,
		} {
			srv := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithQuota(resilienttest.Quota{
				Limit: 10, Window: time.Second, PerClass: true, ResetFormat: format}))
			defer srv.Close()
			servers[host] = srv
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Duration(len(r.URL.RawQuery)) * time.Millisecond)
			servers[r.URL.Host].ServeHTTP(w, r)
		})
		var attempts atomic.Int64
		tr := New(handlerRT{h}, withRand(lockedRand(6)), WithObserver(func(Attempt) { attempts.Add(1) }))
		client := &http.Client{Transport: tr}
		hosts := []string{"a.test", "b.test", "c.test"}
		var ok, throttled, refused atomic.Int64
		var wg sync.WaitGroup
		for g := range 100 {
			wg.Go(func() {
				for i := range 10 {
					method, created := "GET", http.StatusOK
					if i%2 == 1 {
						method, created = "POST", http.StatusCreated
					}
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if g%4 == 0 {
						ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
					}
					req, _ := http.NewRequestWithContext(ctx, method, "http://"+hosts[(g+i)%3]+"/v1/posts?"+strings.Repeat("p", g%7+1), strings.NewReader(fmt.Sprintf(`{"content":"post %d-%d"}`, g, i)))
					resp, err := client.Do(req)
					cancel()
					switch {
					case err == nil && resp.StatusCode == created:
						ok.Add(1)
					case err == nil && resp.StatusCode == 429 && g%4 == 0:
						throttled.Add(1)
					case err == nil:
						t.Errorf("status %d", resp.StatusCode)
					case errors.Is(err, ErrRateLimited), errors.Is(err, context.DeadlineExceeded):
						refused.Add(1)
					default:
						t.Errorf("err = %v", err)
					}
					if resp != nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			})
		}
		wg.Wait()
		limited := 0
		for _, s := range servers {
			limited += s.Stats().RateLimited
		}
		t.Logf("%d ok, %d 429 returned, %d refused locally; %d attempts, %d 429s", ok.Load(), throttled.Load(), refused.Load(), attempts.Load(), limited)
		if n := ok.Load() + throttled.Load() + refused.Load(); n != 1000 {
			t.Errorf("%d calls ended, want 1000", n)
		}
		rl := rlOf(t, tr)
		rl.mu.Lock()
		defer rl.mu.Unlock()
		if n := rl.len(); n != 6 {
			t.Errorf("%d partitions, want 6 (3 hosts × 2 classes)", n)
		}
		rl.each(func(p *partition) {
			p.mu.Lock()
			if p.inflight != 0 || p.reopened != nil {
				t.Errorf("%s: %d in flight, waiters channel %v; want none", p.key, p.inflight, p.reopened)
			}
			p.mu.Unlock()
		})
	})
}

func TestWithRateLimitPanics(t *testing.T) {
	for _, tt := range []struct {
		r     rate.Limit
		burst int
	}{{0, 1}, {-1, 1}, {10, 0}, {rate.Limit(math.NaN()), 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WithRateLimit(%v, %d) did not panic", tt.r, tt.burst)
				}
			}()
			WithRateLimit(tt.r, tt.burst)
		}()
	}
	WithRateLimit(rate.Inf, 0) // no static pacing: burst unused
}

func TestPartKeyString(t *testing.T) {
	for _, tt := range []struct {
		k    partKey
		want string
	}{
		{partKey{scheme: "https", host: "api.example.com"}, "https://api.example.com reads"},
		{partKey{scheme: "http", host: "api.example.com:8080", write: true}, "http://api.example.com:8080 writes"},
		{partKey{scheme: "https", host: "api.github.com", resource: "search"}, "https://api.github.com search"},
		{partKey{host: "account-1", custom: true}, "account-1"},
		{partKey{host: "account-1;jsessionid=S", custom: true}, "account-1;jsessionid=S"},
		{partKey{host: "api.test;jsessionid=S"}, "api.test;jsessionid=REDACTED reads"},
		{partKey{host: "api.test", write: true, cred: 1}, "api.test writes, credential " + credentialTag(1)},
	} {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.k, got, tt.want)
		}
	}
}

// BenchmarkRateLimitOverhead measures what the rate limiter adds to the
// happy path of the whole chain, over a stub returning a 200 (a response
// of its own per call): off (WithoutRateLimit) against on (the default),
// without rate-limit headers and with X-RateLimit-* headers announcing a
// quota too large to pace.
func BenchmarkRateLimitOverhead(b *testing.B) {
	plain := &stubOK{header: http.Header{
		"Content-Type": {"application/json"},
		"Date":         {"Tue, 17 Feb 2026 14:00:00 GMT"},
		"X-Request-Id": {"7f3a"},
	}}
	announced := &stubOK{header: http.Header{
		"Content-Type":          {"application/json"},
		"Date":                  {"Tue, 17 Feb 2026 14:00:00 GMT"},
		"X-Request-Id":          {"7f3a"},
		"X-Ratelimit-Limit":     {"1000000000000"},
		"X-Ratelimit-Remaining": {"999999999999"},
		"X-Ratelimit-Reset":     {"60"},
	}}
	for _, bb := range []struct {
		name string
		stub *stubOK
		opts []Option
	}{
		{"off", plain, []Option{WithoutRateLimit()}},
		{"on", plain, nil},
		{"off-headers", announced, []Option{WithoutRateLimit()}},
		{"on-headers", announced, nil},
	} {
		b.Run(bb.name, func(b *testing.B) {
			tr := New(bb.stub, bb.opts...)
			req, _ := http.NewRequest("GET", "https://api.example.com/v1/posts", nil)
			b.ReportAllocs()
			for b.Loop() {
				roundTripOK(b, tr, req)
			}
		})
	}
}

// BenchmarkRateLimitQuota hammers a quota server (30 requests per 100 ms
// window, X-RateLimit-* headers with Unix-millisecond resets, 429 without
// Retry-After) from 16 goroutines, b.N GETs in all, in real time: fake time
// is not available to benchmarks. It reports the share of attempts that got
// a 429 and the share of the quota used. A run of b.N calls lasts about
// b.N × 3.5 ms; use e.g. -benchtime=1000x.
func BenchmarkRateLimitQuota(b *testing.B) {
	q := resilienttest.Quota{Limit: 30, Window: 100 * time.Millisecond, PerClass: true, ResetFormat: resilienttest.UnixMillis}
	srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithQuota(q))
	defer srv.Close()
	// The server is called in process. Its quota always sends Retry-After,
	// in whole seconds (at least 1): drop it, so that the client paces by
	// the millisecond reset alone.
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := handlerRT{srv}.RoundTrip(req)
		if err == nil {
			resp.Header.Del("Retry-After")
		}
		return resp, err
	})
	client := &http.Client{Transport: New(base)}
	b.ResetTimer()
	r := hammer(client, srv, q, 16, b.N)
	b.StopTimer()
	if r.failures > 0 {
		b.Errorf("%d calls did not end in a 200", r.failures)
	}
	b.ReportMetric(r.share429, "429/attempt")
	b.ReportMetric(r.used, "quota-used")
}

// TestRateLimitSpreadWithinDeadline: a pause that ends before the call's
// deadline is waited, then the request sent, whatever the jitter the
// limiter adds to spread the waiters: the spread is the limiter's own, and
// must not turn a call that fits its deadline into ErrRateLimited.
func TestRateLimitSpreadWithinDeadline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   Option
		ctxTO time.Duration
	}{
		{"context deadline", nil, 10500 * time.Millisecond},
		{"call budget", WithMaxElapsed(10500 * time.Millisecond), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := throttledOnce("10")
				maxJitter := withRand(func(n int64) int64 { return n - 1 })
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), maxJitter, tc.opt)}
				if code, _ := do(t, client, "GET", "http://api.test/v1/posts"); code != 429 {
					t.Fatalf("first read: %d, want 429", code)
				}
				ctx := context.Background()
				if tc.ctxTO > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTO)
					defer cancel()
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/v1/posts", nil)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("err = %v after %v, want the pause of 10s waited and the request sent", err, time.Since(start))
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want 200", resp.StatusCode)
				}
				if d := time.Since(start); d < 10*time.Second || d > 10500*time.Millisecond {
					t.Errorf("sent after %v, want after the 10s pause and before the deadline", d)
				}
			})
		})
	}
}

// TestRateLimitPerCredential: servers count quotas per credential. A
// service calling one API for many tenants, each with its own token, must
// not let one tenant's 429 (a 15-minute Retry-After, X's windows) or spent
// quota hold the others, which a plain client would send and the server
// would answer. The tenant that was throttled waits its own pause.
func TestRateLimitPerCredential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		hits := map[string]int{}
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			tok := req.Header.Get("Authorization") + req.Header.Get("X-Api-Key") + req.URL.Query().Get("access_token")
			//lint:ignore SA1008 the entries a caller set by hand in lower case.
			tok += strings.Join(req.Header["authorization"], "") + strings.Join(req.Header["x-api-key"], "")
			hits[tok]++
			h := http.Header{}
			h.Set("X-RateLimit-Limit", "900")
			status := http.StatusOK
			if tok == "Bearer tenant-a" || tok == "tenant-q" {
				h.Set("X-RateLimit-Remaining", "0")
				h.Set("Retry-After", "900")
				status = http.StatusTooManyRequests
			} else {
				h.Set("X-RateLimit-Remaining", "899")
			}
			h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(15*time.Minute).Unix(), 10))
			return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt)
		call := func(header, value string) (int, error) {
			req := newRequest(t, context.Background(), http.MethodGet, "https://api.x.test/2/tweets", nil)
			switch header {
			case "":
			case "?access_token": // Facebook's Graph API: the token in the query
				req.URL.RawQuery = "fields=id&access_token=" + value
			case "authorization", "x-api-key": // set by hand, in lower case
				req.Header[header] = []string{value}
			default:
				req.Header.Set(header, value)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := call("Authorization", "Bearer tenant-a"); code != http.StatusTooManyRequests || err != nil {
			t.Fatalf("tenant A: %d, %v; want its 429 back (900 s is past WithMaxRetryAfter)", code, err)
		}
		if code, err := call("?access_token", "tenant-q"); code != http.StatusTooManyRequests || err != nil {
			t.Fatalf("tenant Q: %d, %v; want its 429 back", code, err)
		}
		start := time.Now()
		for _, tenant := range [][2]string{{"Authorization", "Bearer tenant-b"}, {"X-Api-Key", "key-c"}, {"?access_token", "tenant-d"},
			{"authorization", "Bearer tenant-e"}, {"x-api-key", "key-f"}, {"", ""}} {
			for range 3 {
				if code, err := call(tenant[0], tenant[1]); code != http.StatusOK || err != nil {
					t.Errorf("%s %s after tenant A's 429: %d, %v; want 200", tenant[0], tenant[1], code, err)
				}
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the other tenants waited %v, want no wait", d)
		}
		if _, err := call("Authorization", "Bearer tenant-a"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("tenant A again: %v; want ErrRateLimited at once: its own pause holds", err)
		}
		if hits["Bearer tenant-a"] != 1 {
			t.Errorf("tenant A reached the server %d times during its pause, want once", hits["Bearer tenant-a"])
		}
		a := hostState(t, tr, "https://api.x.test", "Authorization", "Bearer tenant-a").Reads
		b := hostState(t, tr, "https://api.x.test", "Authorization", "Bearer tenant-b").Reads
		if a.PausedUntil.IsZero() || !b.PausedUntil.IsZero() || b.Remaining != 899 {
			t.Errorf("HostState: tenant A %+v, tenant B %+v; want A paused, B not, with its own quota", a, b)
		}
	})
}

// TestRateLimitPerCredentialSpelledByHand: a credential header set by hand
// in lower case (req.Header["authorization"], HTTP/2's spelling, which
// net/http sends as written and servers read as any other) names its
// partition too, and so does each of the other headers APIs read a key
// from (Azure OpenAI's api-key, Google's, Azure API Management's,
// OpenStack's, GitLab's): tenant A's 429 does not hold tenant B's calls.
func TestRateLimitPerCredentialSpelledByHand(t *testing.T) {
	for _, tc := range []struct{ name, app string }{{"authorization", ""}, {"x-api-key", ""},
		// An app's key in X-Api-Key, each user's token in authorization:
		// the token names the partition, as Authorization's does.
		{"authorization", "the-apps-key"},
		{"Api-Key", ""}, {"X-Goog-Api-Key", ""}, {"Ocp-Apim-Subscription-Key", ""},
		{"X-Auth-Token", ""}, {"Private-Token", ""}, {"X-Access-Token", ""},
		// Each of those also set by hand in lower case, as Azure's docs
		// spell api-key: net/http sends it as written.
		{"api-key", ""}, {"x-goog-api-key", ""}, {"ocp-apim-subscription-key", ""},
		{"x-auth-token", ""}, {"private-token", ""}, {"x-access-token", ""}} {
		name := tc.name
		t.Run(name+" "+tc.app, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hitsB := 0
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if req.Header[name][0] == "tenant-a-key" {
						return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}}, Body: http.NoBody, Request: req}, nil
					}
					hitsB++
					return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithMaxRetries(0))
				send := func(key string) int {
					req := newRequest(t, context.Background(), http.MethodGet, "https://api.test/v1/items", nil)
					req.Header[name] = []string{key}
					if tc.app != "" {
						req.Header.Set("X-Api-Key", tc.app)
					}
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Fatalf("%s: %v", key, err)
					}
					resp.Body.Close()
					return resp.StatusCode
				}
				if code := send("tenant-a-key"); code != http.StatusTooManyRequests {
					t.Fatalf("tenant A: %d, want its 429", code)
				}
				start := time.Now()
				if code := send("tenant-b-key"); code != http.StatusOK || hitsB != 1 || time.Since(start) != 0 {
					t.Errorf("tenant B: %d after %v, %d hits; want 200 at once: tenant A's pause is its own", code, time.Since(start), hitsB)
				}
			})
		})
	}
}

// TestRateLimitCustomKeyHasNoCredential: a custom key is the caller's
// whole partition: no credential is added to it.
func TestRateLimitCustomKeyHasNoCredential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			h := http.Header{"Retry-After": {"900"}}
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithRateLimitKey(func(r *http.Request) string { return r.URL.Host }))
		for _, tok := range []string{"Bearer a", "Bearer b"} {
			req := newRequest(t, context.Background(), http.MethodGet, "https://api.x.test/", nil)
			req.Header.Set("Authorization", tok)
			if resp, err := tr.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		}
		if calls != 1 {
			t.Errorf("the server saw %d calls, want 1: the second credential shares the custom partition's pause", calls)
		}
	})
}

// basicShared returns the Basic credential of user with a password of 48
// bytes that other users share: values of one length whose last 64 bytes
// are the same, their users coming first.
func basicShared(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+strings.Repeat("p", 48)))
}

func TestCredentialOf(t *testing.T) {
	req := func(query string, h http.Header) *http.Request {
		return &http.Request{URL: &url.URL{Scheme: "https", Host: "graph.example.test", Path: "/v1/me", RawQuery: query}, Header: h}
	}
	long := strings.Repeat("x", 100)
	tail := strings.Repeat("z", 40) // keys of one length that differ 41 bytes from their end, within the 64 read
	fps := map[uint64]string{}
	for _, v := range []string{"Bearer a", "Bearer b", "Basic YWxpY2U6cHc=", "Basic Ym9iOnB3", long + "1", long + "2", "1" + long, "2" + long, "k", "a" + tail, "b" + tail, basicShared("tenant-a"), basicShared("tenant-b")} {
		fp := credentialOf(req("", http.Header{"Authorization": {v}}))
		if fp == 0 {
			t.Errorf("credentialOf(%q) = 0, want a fingerprint", v)
		}
		if prev, ok := fps[fp]; ok {
			t.Errorf("%q and %q share a fingerprint", prev, v)
		}
		fps[fp] = v
		if again := credentialOf(req("", http.Header{"X-Api-Key": {v}})); again != fp {
			t.Errorf("X-Api-Key %q: %x, want the same fingerprint as in Authorization (%x)", v, again, fp)
		}
		names := []string{"authorization", "x-api-key"} // set by hand in lower case, and the other key headers in either spelling
		for _, name := range keyHeaders() {
			names = append(names, name, strings.ToLower(name))
		}
		for _, name := range names {
			if again := credentialOf(req("", http.Header{name: {v}})); again != fp {
				t.Errorf("%s %q: %x, want the same fingerprint as in Authorization (%x)", name, v, again, fp)
			}
		}
		q := url.Values{"fields": {"id,name"}, "access_token": {v}}.Encode()
		if v == url.QueryEscape(v) {
			if again := credentialOf(req(q, nil)); again != fp {
				t.Errorf("?%s: %x, want the same fingerprint as in Authorization (%x)", q, again, fp)
			}
		} else if credentialOf(req(q, nil)) == 0 {
			t.Errorf("?%s: no fingerprint", q)
		}
	}
	for _, query := range []string{"api_key=k1", "limit=10&apikey=k1", "access_token=k1&api_key=k2", "access_token=&api_key=k1"} {
		if fp := credentialOf(req(query, nil)); fp != credentialOf(req("", http.Header{"Authorization": {"k1"}})) {
			t.Errorf("?%s: %x, want k1's fingerprint", query, fp)
		}
	}
	// Of the other key headers, the first in keyHeaders' order names the
	// credential, whatever the spelling of either; of one header's two
	// spellings, the canonical one: map order decides nothing.
	keys := keyHeaders()
	for i := range keys {
		for j := i; j < len(keys); j++ {
			for _, h := range []http.Header{
				{strings.ToLower(keys[i]): {"first"}, keys[j]: {"second"}},
				{keys[i]: {"first"}, strings.ToLower(keys[j]): {"second"}},
			} {
				want := "first"
				if i == j {
					want = h[keys[i]][0] // the canonical entry's
				}
				if fp := credentialOf(req("", h)); fp != credentialOf(req("", http.Header{"Authorization": {want}})) {
					t.Errorf("credentialOf(%v) = %x, want the fingerprint of %q", h, fp, want)
				}
			}
		}
	}
	// The header wins over the query.
	if fp := credentialOf(req("access_token=q", http.Header{"Authorization": {"h"}})); fp != credentialOf(req("", http.Header{"Authorization": {"h"}})) {
		t.Errorf("Authorization and ?access_token: %x, want the header's fingerprint", fp)
	}
	for _, r := range []*http.Request{
		req("", nil), req("", http.Header{}), req("", http.Header{"Authorization": {""}}), req("", http.Header{"Cookie": {"s=1"}}),
		// Parameters that also mean something else carry no credential,
		// nor do empty values or names that only end like one.
		req("key=k&token=t&page_token=p&next_token=n", nil), req("access_token=&api_key", nil), req("my_access_token=k&xapikey=k", nil),
		{Header: http.Header{}}, // no URL: RoundTrip refuses it before any key
	} {
		if fp := credentialOf(r); fp != 0 {
			t.Errorf("credentialOf(%v, ?%s) = %x, want 0", r.Header, r.URL, fp)
		}
	}
	// Stable across processes: a QuotaStore's partitions are named with it.
	if fp := credentialOf(req("", http.Header{"Authorization": {"Bearer a"}})); fp != 0x4072633ef9c2c785 {
		t.Errorf("credentialOf(Bearer a) = %#x, want %#x, as every process computes it", fp, uint64(0x4072633ef9c2c785))
	}
}

// TestCredentialOfSigV4: an AWS Signature Version 4 Authorization value
// is made anew for each request (it signs the date and the body), so that
// its fingerprint named a new partition per request, and a 429's pause held
// no other request of the same credential. Its access key ID names it.
func TestCredentialOfSigV4(t *testing.T) {
	sig := func(alg, akid, scope, signature string) *http.Request {
		v := alg + " Credential=" + akid + "/" + scope + ", SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + signature
		return &http.Request{URL: &url.URL{Scheme: "https", Host: "dynamodb.us-east-1.amazonaws.com", Path: "/"}, Header: http.Header{"Authorization": {v}}}
	}
	const (
		sig1 = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
		sig2 = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	)
	a := credentialOf(sig("AWS4-HMAC-SHA256", "AKIDEXAMPLE", "20260101/us-east-1/dynamodb/aws4_request", sig1))
	for _, r := range []*http.Request{
		sig("AWS4-HMAC-SHA256", "AKIDEXAMPLE", "20260101/us-east-1/dynamodb/aws4_request", sig2),
		sig("AWS4-HMAC-SHA256", "AKIDEXAMPLE", "20260102/us-east-1/dynamodb/aws4_request", sig2),
		sig("AWS4-ECDSA-P256-SHA256", "AKIDEXAMPLE", "20260101/dynamodb/aws4_request", sig2), // SigV4a
	} {
		if fp := credentialOf(r); fp != a {
			t.Errorf("credentialOf(%q) = %x, want %x: one access key, one credential", r.Header.Get("Authorization"), fp, a)
		}
	}
	if fp := credentialOf(sig("AWS4-HMAC-SHA256", "AKIDOTHER", "20260101/us-east-1/dynamodb/aws4_request", sig1)); fp == a || fp == 0 {
		t.Errorf("another access key: %x, want a fingerprint of its own (not %x)", fp, a)
	}
	// Google Cloud Storage's HMAC signature has the same form.
	g := credentialOf(sig("GOOG4-HMAC-SHA256", "GOOG1EXAMPLE", "20260101/auto/storage/goog4_request", sig1))
	if fp := credentialOf(sig("GOOG4-HMAC-SHA256", "GOOG1EXAMPLE", "20260102/auto/storage/goog4_request", sig2)); fp != g || g == a {
		t.Errorf("GOOG4: %x and %x; want one fingerprint for one HMAC key, not the AWS key's %x", g, fp, a)
	}
	// A value that only looks like one is taken whole.
	for _, v := range []string{"AWS4-HMAC-SHA256 " + sig1, "AWS4-HMAC-SHA256 Credential=", "Bearer Credential=AKIDEXAMPLE/x",
		"GOOG4-HMAC-SHA256 " + sig1, "SharedKey", "SharedKey :" + sig1, "SharedKey account", "SharedKeyX account:" + sig1} {
		r := &http.Request{URL: &url.URL{Scheme: "https", Host: "x.test"}, Header: http.Header{"Authorization": {v}}}
		if fp := credentialOf(r); fp != fingerprint(v) {
			t.Errorf("credentialOf(%q) = %x, want the whole value's fingerprint %x", v, fp, fingerprint(v))
		}
	}
}

// TestCredentialOfSharedKey: Azure Storage's Shared Key signature
// ("SharedKey account:signature", or SharedKeyLite) is made anew for each
// request: its account names the credential.
func TestCredentialOfSharedKey(t *testing.T) {
	fp := func(v string) uint64 {
		return credentialOf(&http.Request{URL: &url.URL{Scheme: "https", Host: "myaccount.blob.core.windows.net", Path: "/c/b"}, Header: http.Header{"Authorization": {v}}})
	}
	a := fp("SharedKey myaccount:tzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA08=")
	for _, v := range []string{"SharedKey myaccount:ctzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA0=", "SharedKeyLite myaccount:x4rWfRRNwETMdgPqTbRyTwyGk/0NSPGOt1Ha8zq0KtI="} {
		if got := fp(v); got != a {
			t.Errorf("credentialOf(%q) = %x, want %x: one account, one credential", v, got, a)
		}
	}
	if got := fp("SharedKey other:tzMq410TV3wS7upTBcunJTDLEJwMAZuFPfr0mrrA08="); got == a || got == 0 {
		t.Errorf("another account: %x, want a fingerprint of its own (not %x)", got, a)
	}
}

// TestCredentialOfOAuth1: OAuth 1.0a signs each request anew (X's user
// context, which posts on a user's behalf: a nonce, a timestamp and a
// signature per request), so that, fingerprinted whole, one user's
// requests got a partition each, and a 429's pause held none of them. Its
// consumer key and token name the credential.
func TestCredentialOfOAuth1(t *testing.T) {
	oauth := func(consumer, token, nonce, ts, sig string) *http.Request {
		v := `OAuth oauth_consumer_key="` + consumer + `", oauth_nonce="` + nonce + `", oauth_signature="` + sig +
			`", oauth_signature_method="HMAC-SHA1", oauth_timestamp="` + ts + `", oauth_token="` + token + `", oauth_version="1.0"`
		return &http.Request{URL: &url.URL{Scheme: "https", Host: "api.x.com", Path: "/2/tweets"}, Header: http.Header{"Authorization": {v}}}
	}
	a := credentialOf(oauth("xvz1evFS4wEEPTGEFPHBog", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", "1318622958", "tnnArxj06cWHq44gCs1OSKk%2FjY%3D"))
	if b := credentialOf(oauth("xvz1evFS4wEEPTGEFPHBog", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "Q2pTgmZeNu2VS4cgkYjzVBB8Y0ZFabxSWbWovY3uYS", "1318622961", "hCtSmYh%2BhOuuABbyCZSQjz2dgK0%3D")); b != a {
		t.Errorf("one user's two requests: %x and %x, want one credential", a, b)
	}
	// The scheme's name is case-insensitive (RFC 9110, section 11.1).
	lower := oauth("xvz1evFS4wEEPTGEFPHBog", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "Q2pTgmZeNu2VS4cgkYjzVBB8Y0ZFabxSWbWovY3uYS", "1318622961", "hCtSmYh%2BhOuuABbyCZSQjz2dgK0%3D")
	lower.Header.Set("Authorization", "oauth"+strings.TrimPrefix(lower.Header.Get("Authorization"), "OAuth"))
	if b := credentialOf(lower); b != a {
		t.Errorf("one user's request, its scheme spelled %q: %x, want %x", "oauth", b, a)
	}
	if b := credentialOf(oauth("xvz1evFS4wEEPTGEFPHBog", "99-OtherUsersToken", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", "1318622958", "tnnArxj06cWHq44gCs1OSKk%2FjY%3D")); b == a || b == 0 {
		t.Errorf("another user's token: %x, want a credential of its own (not %x)", b, a)
	}
	if b := credentialOf(oauth("OtherApp", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", "n", "1", "s")); b == a || b == 0 {
		t.Errorf("another app, same token: %x, want a credential of its own (not %x)", b, a)
	}
	// An OAuth value without either parameter is taken whole.
	for _, v := range []string{`OAuth realm="x"`, `OAuth oauth_nonce="n", oauth_signature="s"`} {
		r := &http.Request{URL: &url.URL{Scheme: "https", Host: "x.test"}, Header: http.Header{"Authorization": {v}}}
		if fp := credentialOf(r); fp != fingerprint(v) {
			t.Errorf("credentialOf(%q) = %x, want the whole value's fingerprint %x", v, fp, fingerprint(v))
		}
	}
}

// TestCredentialNotComputedBack: a refused attempt's error names its
// partition, which tells credentials apart; nothing in it gives the
// credential back. The name carried fingerprint's own value, whose steps
// can be undone: an 8-byte API key (NASA's DEMO_KEY) was computed back from
// the error in a microsecond (unfingerprint8).
func TestCredentialNotComputedBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"120"}}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt)
		var errs []string
		for _, key := range []string{"DEMO_KEY", "DEMO_KEX"} {
			for range 2 { // the 429, then the refusal during its pause
				req := newRequest(t, context.Background(), http.MethodGet, "https://api.nasa.test/planetary/apod", nil)
				req.Header.Set("X-Api-Key", key)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
					continue
				}
				if !errors.Is(err, ErrRateLimited) {
					t.Fatalf("%v, want ErrRateLimited", err)
				}
				errs = append(errs, err.Error())
			}
		}
		if len(errs) != 2 || errs[0] == errs[1] {
			t.Fatalf("errors %q: want one per credential, naming different partitions", errs)
		}
		for _, msg := range errs {
			_, tag, ok := strings.Cut(msg, "credential ")
			if !ok {
				t.Fatalf("error %q names no credential", msg)
			}
			tag, _, _ = strings.Cut(tag, ":")
			fp, err := strconv.ParseUint(tag, 16, 64)
			if err != nil {
				t.Fatalf("credential %q: %v", tag, err)
			}
			for _, c := range unfingerprint8(fp) {
				if strings.HasPrefix(c, "DEMO_KE") {
					t.Errorf("error %q: the credential %q is computed back from it", msg, c)
				}
			}
		}
	})
}

// unfingerprint8 returns the 8-byte strings whose fingerprint is fp: its
// steps for one word, undone (the last one, x|1, has two antecedents).
func unfingerprint8(fp uint64) []string {
	const c1 uint64 = 0xbf58476d1ce4e5b9
	c0 := uint64(0x9e3779b97f4a7c15)
	seed := 8 * c0 // wraps, as fingerprint's product does
	inv := c1      // the inverse of c1 mod 2^64, by Newton's iteration
	for range 6 {
		inv *= 2 - c1*inv
	}
	unshift := func(y uint64, s uint) uint64 {
		x := y
		for range 64/s + 1 {
			x = y ^ x>>s
		}
		return x
	}
	var out []string
	for _, x := range []uint64{fp, fp &^ 1} {
		w := unshift(unshift(x, 29), 31)*inv ^ seed
		b := make([]byte, 8)
		for i := range b {
			b[i] = byte(w >> (8 * i))
		}
		out = append(out, string(b))
	}
	return out
}

// throttledRetryWait sends a GET, in a synctest bubble, through a Transport
// with opts (and WithMaxRetryAfter of 2 minutes) whose base answers a 429
// with header, then 200: it fails t unless the call made wantCalls
// attempts (one: the 429 returned) and the retry, if any, waited wantWait
// plus at most its jitter.
func throttledRetryWait(t *testing.T, opts []Option, header http.Header, wantCalls int, wantWait time.Duration) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		base := &rtScript{steps: []rtStep{{status: http.StatusTooManyRequests, header: header}, {status: http.StatusOK}}}
		tr := New(base, append(append([]Option(nil), opts...), WithMaxRetryAfter(2*time.Minute))...)
		resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://api.test/x", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(base.calls) != wantCalls {
			t.Fatalf("%d attempts, want %d", len(base.calls), wantCalls)
		}
		if wantCalls == 1 {
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("status %d, want the 429", resp.StatusCode)
			}
			return
		}
		if wait := base.calls[1].at.Sub(base.calls[0].at); wait < wantWait || wait > wantWait+wantWait/10+time.Second {
			t.Errorf("the retry waited %v, want %v (+ jitter)", wait, wantWait)
		}
	})
}

// TestLegacyCancelEndsLocalWaits checks that a caller who cancels through
// the request's Cancel channel (deprecated, still honored by net/http) gets
// its call ended at once while it waits in the chain, as a canceled context
// ends it: for its turn of a pace, a host's pause, a QuotaStore's token or
// a slot of WithMaxInFlight. Each of these waits ran to its end (20s, 30s,
// 10s, or until the slot was free), only for net/http to fail the
// canceled request at once then.
func TestLegacyCancelEndsLocalWaits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		first int  // the first call's status
		hold  bool // the first call holds its slot until the test ends
		store bool // the second call's store token is 10s away
	}{
		{"pace", []Option{WithRateLimit(rate.Every(20*time.Second), 1)}, 200, false, false},
		{"pause", nil, http.StatusTooManyRequests, false, false},
		{"store token", nil, 200, false, true},
		{"slot", []Option{WithMaxInFlight(1)}, 200, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				release := make(chan struct{})
				defer close(release)
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					select { // as net/http's Transport does
					case <-cancelOf(r):
						return nil, errors.New("net/http: request canceled")
					default:
					}
					n := hits.Add(1)
					status := http.StatusOK
					if n == 1 {
						status = tc.first
						if tc.hold {
							<-release
						}
					}
					return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"30"}}, Body: http.NoBody, Request: r}, nil
				})
				store := new(memQuota)
				var seen collector[Attempt]
				opts := append([]Option{WithMaxRetries(0), WithQuotaStore(store), WithObserver(seen.add)}, tc.opts...)
				tr := New(base, opts...)
				const url = "http://api.test/v1/items"
				first := make(chan struct{})
				go func() {
					defer close(first)
					if resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", url, nil)); err == nil {
						resp.Body.Close()
					}
				}()
				if tc.hold {
					synctest.Wait()
				} else {
					<-first
				}
				if tc.store {
					store.part("http://api.test reads").take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) {
						return 10 * time.Second, true, nil
					}
				}
				req := newRequest(t, context.Background(), "GET", url, nil)
				cancel := make(chan struct{})
				//lint:ignore SA1019 http.Client sets it so at its Timeout: the case tested.
				req.Cancel = cancel
				time.AfterFunc(100*time.Millisecond, func() { close(cancel) })
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				if d := time.Since(start); d != 100*time.Millisecond {
					t.Errorf("returned after %v, want 100ms: canceled then", d)
				}
				if !errors.Is(err, errRequestCanceled) {
					t.Errorf("err = %v, want one wrapping errRequestCanceled", err)
				}
				if n := hits.Load(); n != 1 {
					t.Errorf("the server saw %d requests, want 1", n)
				}
				if a := seen.all(); len(a) == 0 || a[len(a)-1].Outcome != OutcomeCanceled {
					t.Errorf("attempts = %+v, want the last one canceled", a)
				}
			})
		})
	}
}

// TestRefusedBelowSpendsNoPace checks that the attempts a layer below the
// rate limiter refuses without sending them (the open breaker, no slot of
// WithMaxInFlight at the attempt's deadline) spend none of the host's pace
// (here the quota it announced: 50 left of 3600 an hour, paced at 0.95 a
// second with bursts of what is left): once the host is back, the calls
// go at the pace the quota allows, as if the refused ones had never been
// made. Each refused attempt took a token, so that the refusals spent the
// burst, and the 40 calls that followed took 32s instead of going at
// once (41s), although the server had seen none of the refused ones.
func TestRefusedBelowSpendsNoPace(t *testing.T) {
	quota := func(remaining int) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"3600"}, "X-Ratelimit-Remaining": {strconv.Itoa(remaining)}, "X-Ratelimit-Reset": {"3590"}}
	}
	const url = "https://api.test/v1/posts"
	for _, tc := range []struct {
		name   string
		opts   []Option
		refuse func(t *testing.T, h *bkHost, tr *Transport)
	}{
		{"breaker", []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second})},
			func(t *testing.T, h *bkHost, tr *Transport) {
				h.status.Store(http.StatusInternalServerError)
				h.header = nil
				if code, _, err := bkCall(t, tr, url); code != 500 {
					t.Fatalf("the call that trips the breaker = %d %v", code, err)
				}
				for range 60 {
					_, _, err := bkCall(t, tr, url)
					bkWantOpen(t, err)
				}
				time.Sleep(10 * time.Second)
				h.status.Store(http.StatusOK)
			}},
		{"in-flight limit", []Option{WithMaxInFlight(1)},
			func(t *testing.T, h *bkHost, tr *Transport) {
				h.wait = make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() { bkCall(t, tr, url) }) // holds the slot
				synctest.Wait()
				refused := 0
				var mu sync.Mutex
				for range 60 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						defer cancel()
						if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil)); errors.Is(err, ErrTooManyInFlight) {
							mu.Lock()
							refused++
							mu.Unlock()
						}
					})
				}
				time.Sleep(time.Second)
				synctest.Wait()
				close(h.wait)
				wg.Wait()
				h.wait = nil
				if refused < 40 {
					t.Fatalf("%d attempts refused for want of a slot, want most of 60", refused)
				}
			}},
	} {
		bkSynctestRun(t, tc.name, func(t *testing.T) {
			h := new(bkHost)
			h.header = quota(50)
			tr := New(bkNet{"api.test": h}, append([]Option{WithMaxRetries(0)}, tc.opts...)...)
			if code, _, err := bkCall(t, tr, url); code != 200 {
				t.Fatalf("first call = %d %v", code, err)
			}
			tc.refuse(t, h, tr)
			sent := h.hits.Load()
			start := time.Now()
			for i := range 40 {
				h.header = quota(48 - i)
				if code, _, err := bkCall(t, tr, url); code != 200 {
					t.Fatalf("call %d after the refusals = %d %v", i, code, err)
				}
			}
			if took := time.Since(start); took != 0 {
				t.Errorf("40 calls after the refusals took %v, want none waiting: the quota is left whole", took)
			}
			if n := h.hits.Load() - sent; n != 40 {
				t.Errorf("the server saw %d requests after the refusals, want 40", n)
			}
		})
	}
}

// TestGiveBackKeepsTheBurst checks that the tokens given back to a pace
// (see giveBack) never make its bucket hold more than its burst: given
// back while it refills, they are lost once it is full, as they would be
// in it. Given back once part of a token was refilled, the room left for
// them, the burst less that part, is rounded down: one token is lost
// ('half a token refilled': 4). Kept as a part of a token, made whole by
// a token lim lent, that part was never taken off what was owed, and made
// a token again each time lim refilled the rest: the pace was passed
// (TestGivenBackPartOfATokenKeepsThePace).
func TestGiveBackKeepsTheBurst(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, tt := range []struct {
		name  string
		after time.Duration // from the give-backs to the burst
		want  int           // tokens taken at once then
	}{
		{"at once", 0, 5},
		{"half a token refilled", 500 * time.Millisecond, 4},
		{"half refilled", 2 * time.Second, 5},
		{"refilled", 10 * time.Second, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &partition{lim: rate.NewLimiter(1, 5)}
			for i := range 5 {
				if !p.allow(t0) {
					t.Fatalf("allow %d = false, want true", i)
				}
			}
			for range 5 {
				p.giveBack(p.lim, t0)
			}
			now := t0.Add(tt.after)
			got := 0
			p.mu.Lock()
			for p.allow(now) {
				got++
			}
			p.mu.Unlock()
			if got != tt.want {
				t.Errorf("%v after 5 tokens given back: %d taken at once, want %d (the burst)", tt.after, got, tt.want)
			}
		})
	}
}

// TestCanceledWaitGivesBackItsTurn checks that callers whose contexts end
// while they wait for their turn of a pace (a static limit, or a quota the
// server announced: 3600 an hour, one left, paced at 0.95 a second) give
// their turns back: nine callers took the turns of the next nine seconds
// and gave up at once, one after the other; the call that follows goes at
// the first of those turns, not behind all nine. The pace is kept: it does
// not go before that turn. rate.Reservation.CancelAt gives a turn back
// only while no later one was taken, so the first eight were kept for
// nobody, and the call that followed waited 9s, not 1s.
func TestCanceledWaitGivesBackItsTurn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []Option
		header http.Header
		turn   time.Duration // the pace's interval
		first  int           // the calls that empty its bucket
	}{
		{"static", []Option{WithRateLimit(rate.Every(time.Second), 1)}, nil, time.Second, 1},
		{"learned", nil, http.Header{"X-Ratelimit-Limit": {"3600"}, "X-Ratelimit-Remaining": {"1"}, "X-Ratelimit-Reset": {"3600"}},
			time.Second * 100 / 95, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					hits.Add(1)
					return &http.Response{StatusCode: http.StatusOK, Header: tc.header.Clone(), Body: http.NoBody, Request: r}, nil
				})
				tr := New(base, append([]Option{WithMaxRetries(0)}, tc.opts...)...)
				const url = "https://api.test/v1/posts"
				for range tc.first {
					if err := getClosed(t, tr, url); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				var cancels []context.CancelFunc
				for range 9 {
					ctx, cancel := context.WithCancel(context.Background())
					cancels = append(cancels, cancel)
					wg.Go(func() {
						if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil)); !errors.Is(err, context.Canceled) {
							t.Errorf("a waiter's err = %v, want context.Canceled", err)
						}
					})
					synctest.Wait() // waits for its turn, the one after the last
				}
				for _, cancel := range cancels {
					cancel()
					synctest.Wait()
				}
				wg.Wait()
				start := time.Now()
				if err := getClosed(t, tr, url); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > tc.turn || d < tc.turn-tc.turn/10 {
					t.Errorf("the call after nine canceled waits went after %v, want %v: the first turn given back", d, tc.turn)
				}
				if n := hits.Load(); n != int32(tc.first)+1 {
					t.Errorf("the server saw %d requests, want %d", n, tc.first+1)
				}
			})
		})
	}
}

// TestRefusedPastTheDeadlineGivesBackItsTurn: an attempt refused at once
// because its turn of the pace comes after its context's deadline gives
// that turn back: the call that follows goes at it, not a turn later.
func TestRefusedPastTheDeadlineGivesBackItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{}
		tr := New(handlerRT{srv}, WithRateLimit(1, 1), WithMaxRetries(0))
		const url = "http://api.test/"
		start := time.Now()
		if err := getClosed(t, tr, url); err != nil {
			t.Fatal(err) // takes the pace's token
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil)); !errors.Is(err, ErrRateLimited) || time.Since(start) != 0 {
			t.Fatalf("a call whose turn (1s) is past its deadline (500ms): %v after %v, want ErrRateLimited at once", err, time.Since(start))
		}
		if err := getClosed(t, tr, url); err != nil {
			t.Fatal(err)
		}
		if s := srv.seen(""); len(s) != 2 || s[1].at.Sub(start) != time.Second {
			t.Errorf("the server saw %d requests, the last after %v; want 2, the second at the turn given back (1s)", len(s), s[len(s)-1].at.Sub(start))
		}
	})
}

// TestSentAttemptSpendsItsTurn: an attempt that reached the server and
// failed (its connection lost once the request was written) spent its
// turn of the pace, as one answered does: only an attempt refused before
// it was sent gives its turn back. Given back, the next call went at once,
// and the host got two requests within one turn of the pace.
func TestSentAttemptSpendsItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent []time.Duration
		start := time.Now()
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, time.Since(start))
			if len(sent) == 1 {
				return nil, io.ErrUnexpectedEOF // the connection lost after the request was written
			}
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})
		tr := New(base, WithRateLimit(1, 1), WithMaxRetries(0))
		const url = "http://api.test/"
		if err := getClosed(t, tr, url); err == nil {
			t.Fatal("the first call succeeded, want its connection lost")
		}
		if err := getClosed(t, tr, url); err != nil {
			t.Fatal(err)
		}
		if len(sent) != 2 || sent[1] != time.Second {
			t.Errorf("sent at %v, want [0s 1s]: the lost attempt spent its turn", sent)
		}
	})
}

// TestRateLimitOptionsLastWins: the rate limiter's options apply in order,
// the last one winning: WithRateLimit after WithoutRateLimit turns the
// limiter back on, and WithRateLimitKey(nil) after a key function restores
// the default partitions (here, that function exempted every request).
func TestRateLimitOptionsLastWins(t *testing.T) {
	exempt := func(*http.Request) string { return "" }
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"WithRateLimit after WithoutRateLimit", []Option{WithoutRateLimit(), WithRateLimit(1, 1)}},
		{"WithRateLimitKey(nil) after a key", []Option{WithRateLimit(1, 1), WithRateLimitKey(exempt), WithRateLimitKey(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{}
				tr := New(handlerRT{srv}, tc.opts...)
				for range 2 {
					if err := getClosed(t, tr, "http://api.test/"); err != nil {
						t.Fatal(err)
					}
				}
				if s := srv.seen(""); len(s) != 2 || s[1].at.Sub(s[0].at) != time.Second {
					t.Errorf("the server saw %d requests, the last %v after the first; want 2, 1s apart: paced at 1/s", len(s), s[len(s)-1].at.Sub(s[0].at))
				}
			})
		})
	}
}
