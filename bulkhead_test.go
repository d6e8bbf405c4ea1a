package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// flightRT is an in-memory server that counts the requests it is answering
// at once. The i-th request (from 0) takes latency(i, req) of time, or
// until its context ends; it answers status(i) (200 when nil), or panics
// when panics(i) says so.
type flightRT struct {
	latency func(i int, req *http.Request) time.Duration
	status  func(i int) int
	panics  func(i int) bool
	body    func() io.ReadCloser // the response body; "ok" when nil

	mu       sync.Mutex
	now, max int
	arrivals []string // "host/path" of each request, in order
}

func (f *flightRT) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	i := len(f.arrivals)
	f.arrivals = append(f.arrivals, req.URL.Host+req.URL.Path)
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	if req.Body != nil {
		req.Body.Close()
	}
	if f.latency != nil {
		timer := time.NewTimer(f.latency(i, req))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-req.Context().Done():
			return nil, context.Cause(req.Context())
		}
	}
	if f.panics != nil && f.panics(i) {
		panic("base exploded")
	}
	status := http.StatusOK
	if f.status != nil {
		status = f.status(i)
	}
	body := io.NopCloser(strings.NewReader("ok"))
	if f.body != nil {
		body = f.body()
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: body, Request: req}, nil
}

// seen returns the requests the server received so far, in order.
func (f *flightRT) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.arrivals)
}

// maxSeen returns the most requests the server answered at once.
func (f *flightRT) maxSeen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.max
}

// slotCounts returns the attempts in flight and waiting for a slot of the
// host of url in tr's limit (0, 0 for a host it does not hold).
func slotCounts(t *testing.T, tr *Transport, url string) (inFlight, waiting int) {
	t.Helper()
	req := newRequest(t, context.Background(), http.MethodGet, url, nil)
	k, _ := requestKey(tr.bulkhead.keyFn, req)
	s := tr.bulkhead.table.load(k)
	if s == nil {
		return 0, 0
	}
	v := s.state.Load()
	return int(v & slotsMask), int(v >> 32)
}

// getIn sends a GET of url through tr with ctx, and reads and closes the
// response body.
func getIn(t *testing.T, tr http.RoundTripper, ctx context.Context, url string) (int, error) {
	t.Helper()
	resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, url, nil))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestWithMaxInFlightNegativePanics(t *testing.T) {
	defer func() {
		r := recover()
		if msg := fmt.Sprint(r); r == nil || !strings.HasPrefix(msg, "resilient: WithMaxInFlight") {
			t.Errorf("WithMaxInFlight(-1): panic %v, want one prefixed resilient: WithMaxInFlight", r)
		}
	}()
	WithMaxInFlight(-1)
}

// TestMaxInFlightZeroIsNoLayer: WithMaxInFlight(0), the default, puts no
// layer in the chain (TestHappyPathAllocs pins that a success costs what
// it cost before).
func TestMaxInFlightZeroIsNoLayer(t *testing.T) {
	for _, tr := range []*Transport{New(nil), New(nil, WithMaxInFlight(0)), New(nil, WithMaxInFlight(3), WithMaxInFlight(0))} {
		if tr.bulkhead != nil {
			t.Errorf("a Transport without a limit has a bulkhead")
		}
		for rt := tr.inner.rt; rt != nil; {
			if _, ok := rt.(*bulkheadTransport); ok {
				t.Fatalf("a Transport without a limit has the layer in its chain")
			}
			rt = nextOf(rt)
		}
	}
	if New(nil, WithMaxInFlight(1)).bulkhead == nil {
		t.Errorf("WithMaxInFlight(1) made no bulkhead")
	}
}

// nextOf returns the RoundTripper below a layer of the chain, nil for the
// base.
func nextOf(rt http.RoundTripper) http.RoundTripper {
	switch m := rt.(type) {
	case *rateLimitTransport:
		return m.next.rt
	case *bulkheadTransport:
		return m.next.rt
	case *breakerTransport:
		return m.next.rt
	case *attemptDeadline:
		return m.next.rt
	case *classifier:
		return m.next.rt
	}
	return nil
}

// TestMaxInFlightHolds: 10 concurrent calls of one second each, with a
// limit of 2, reach the server 2 at a time at most, and all succeed, in 5
// seconds.
func TestMaxInFlightHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Second }}
		tr := New(srv, WithMaxInFlight(2))
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if code, err := getIn(t, tr, context.Background(), fmt.Sprintf("http://api.test/%d", i)); code != 200 {
					t.Errorf("call %d: %d, %v; want 200", i, code, err)
				}
			})
		}
		wg.Wait()
		if got := srv.maxSeen(); got != 2 {
			t.Errorf("the server answered %d requests at once, want 2", got)
		}
		if got := len(srv.seen()); got != 10 {
			t.Errorf("the server saw %d requests, want 10", got)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("10 calls of 1s, 2 at a time, took %v, want 5s", d)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
			t.Errorf("after the calls: %d in flight, %d waiting; want none", n, w)
		}
	})
}

// TestMaxInFlightFIFO: attempts waiting for a slot get one in the order
// they came, and a newcomer does not overtake them.
func TestMaxInFlightFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(i int, _ *http.Request) time.Duration {
			if i == 0 {
				return 10 * time.Second
			}
			return time.Second
		}}
		tr := New(srv, WithMaxInFlight(1))
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				if code, err := getIn(t, tr, context.Background(), fmt.Sprintf("http://api.test/%d", i)); code != 200 {
					t.Errorf("call %d: %d, %v; want 200", i, code, err)
				}
			})
			synctest.Wait() // call i is in flight, or waiting behind the others
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 1 || w != 5 {
			t.Errorf("%d in flight, %d waiting; want 1 and 5", n, w)
		}
		wg.Wait()
		want := []string{"api.test/0", "api.test/1", "api.test/2", "api.test/3", "api.test/4", "api.test/5"}
		if got := srv.seen(); !slices.Equal(got, want) {
			t.Errorf("the server saw %q, want %q", got, want)
		}
		if got := srv.maxSeen(); got != 1 {
			t.Errorf("the server answered %d requests at once, want 1", got)
		}
	})
}

// TestMaxInFlightDeadline: an attempt that finds its host full waits for
// a slot no longer than its deadline, the earliest of its attempt timeout,
// the call's budget and the context's deadline (the latter two less the
// 1ms any attempt needs: see attemptState.latestStart), and then fails with
// ErrTooManyInFlight without being sent: not retried, not counted by the
// breaker (a 1-failure breaker stays closed), reported as refused (the
// Attempt, the Report, an Error record of the log).
func TestMaxInFlightDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option // the call's
		ctxWait time.Duration
		want    time.Duration
	}{
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second), WithMaxElapsed(2 * time.Second)}, 3 * time.Second, time.Second},
		{"budget", []Option{WithAttemptTimeout(3 * time.Second), WithMaxElapsed(2 * time.Second)}, 4 * time.Second, 2*time.Second - durationFloor},
		{"context", []Option{WithAttemptTimeout(4 * time.Second), WithMaxElapsed(5 * time.Second)}, 3 * time.Second, 3*time.Second - durationFloor},
		{"context alone", []Option{WithMaxElapsed(0)}, 3 * time.Second, 3*time.Second - durationFloor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Minute }}
				var obs observed
				var logs bytes.Buffer
				tr := New(srv, WithMaxInFlight(1), WithObserver(obs.add),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				var holder sync.WaitGroup
				defer holder.Wait()
				holder.Go(func() { getIn(t, tr, context.Background(), "http://api.test/hold") })
				synctest.Wait()

				var r Report
				ctx, cancel := context.WithTimeout(WithReport(WithCallOptions(context.Background(), tc.opts...), &r), tc.ctxWait)
				defer cancel()
				start := time.Now()
				resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/late", nil))
				if resp != nil || !errors.Is(err, ErrTooManyInFlight) {
					t.Fatalf("RoundTrip = %v, %v; want an error wrapping ErrTooManyInFlight", resp, err)
				}
				if d := time.Since(start); d != tc.want {
					t.Errorf("the refused call took %v, want %v", d, tc.want)
				}
				if got := srv.seen(); len(got) != 1 {
					t.Errorf("the server saw %q, want the first call only", got)
				}
				if r.Attempts != 1 || r.Outcome != OutcomeTooManyInFlight || r.StopReason != "" {
					t.Errorf("Report = %+v, want 1 attempt, outcome %q, no stop reason", r, OutcomeTooManyInFlight)
				}
				a := obs.path("/late")
				if len(a) != 1 || a[0].Outcome != OutcomeTooManyInFlight || a[0].Retry || !errors.Is(a[0].Err, ErrTooManyInFlight) {
					t.Errorf("attempts observed: %+v, want one refused, not retried", a)
				}
				if s := tr.BreakerState("http://api.test/"); s != BreakerClosed {
					t.Errorf("breaker %v after the refusal, want closed", s)
				}
				if n, w := slotCounts(t, tr, "http://api.test/"); n != 1 || w != 0 {
					t.Errorf("after the refusal: %d in flight, %d waiting; want 1 and 0", n, w)
				}
				holder.Wait() // its record too
				var rec map[string]any
				for _, r := range logRecords(t, &logs) {
					if r["path"] == "/late" {
						rec = r
					}
				}
				if rec["level"] != "ERROR" || rec["outcome"] != string(OutcomeTooManyInFlight) ||
					!strings.Contains(fmt.Sprint(rec["error"]), ErrTooManyInFlight.Error()) {
					t.Errorf("log record of the refused call: %v, want an error with outcome %q", rec, OutcomeTooManyInFlight)
				}
			})
		})
	}
}

// TestMaxInFlightRetryRefused: a retry that finds its host full past its
// deadline is refused, and the call returns the response of its previous
// attempt, as after a refusal of the breaker.
func TestMaxInFlightRetryRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{
			latency: func(_ int, r *http.Request) time.Duration {
				if r.URL.Path == "/hold" {
					return time.Minute
				}
				return 0
			},
			status: func(i int) int {
				if i == 0 {
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			},
		}
		tr := New(srv, WithMaxInFlight(1), WithBackoff(time.Second, time.Second))
		var r Report
		ctx := WithReport(WithCallOptions(context.Background(), WithAttemptTimeout(500*time.Millisecond)), &r)
		var holder sync.WaitGroup
		defer holder.Wait()
		holder.Add(1)
		time.AfterFunc(500*time.Millisecond, func() {
			defer holder.Done()
			getIn(t, tr, context.Background(), "http://api.test/hold")
		})
		start := time.Now()
		resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/x", nil))
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("RoundTrip = %v, %v; want the first attempt's 503 (server saw %q, took %v)", resp, err, srv.seen(), time.Since(start))
		}
		if body := readBody(t, resp); body != "ok" {
			t.Errorf("body %q, want the 503's", body)
		}
		// The backoff of 1s, then the refused retry's wait of 500ms.
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("the call took %v, want 1.5s: a backoff of 1s and a wait of 500ms", d)
		}
		if got := srv.seen(); !slices.Equal(got, []string{"api.test/x", "api.test/hold"}) {
			t.Errorf("the server saw %q, want the first attempt and the holder", got)
		}
		if r.Attempts != 2 || r.Outcome != OutcomeTooManyInFlight || r.StatusCode != 503 {
			t.Errorf("Report = %+v, want 2 attempts, the last refused, status 503", r)
		}
	})
}

// TestMaxInFlightRefusalRetriedByClassifierPays: a refusal of a full host
// spends no retry budget, unless a Classifier retries it all the same:
// that retry is paid for as any other (see WithMaxInFlight), so that a
// Classifier that retries every error cannot spin on refusals. Nothing is
// sent meanwhile.
func TestMaxInFlightRefusalRetriedByClassifierPays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Minute }}
		tr := New(srv, WithMaxInFlight(1), WithBackoff(0, 0))
		var holder sync.WaitGroup
		defer holder.Wait()
		holder.Add(1)
		go func() {
			defer holder.Done()
			getIn(t, tr, context.Background(), "http://api.test/hold")
		}()
		synctest.Wait() // the holder has the host's one slot
		ctx := WithCallOptions(context.Background(), WithMaxRetries(3), WithAttemptTimeout(time.Second),
			WithClassifier(func(_ *http.Response, _ *APIError, err error, def Class) Class {
				if err != nil {
					return Transient
				}
				return def
			}))
		_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/x", nil))
		if !errors.Is(err, ErrTooManyInFlight) {
			t.Fatalf("RoundTrip error = %v, want ErrTooManyInFlight", err)
		}
		if got := srv.seen(); !slices.Equal(got, []string{"api.test/hold"}) {
			t.Errorf("the server saw %q, want the holder only", got)
		}
		// Three retries, each refused: the first two were followed by
		// another retry, and are paid for; the last, refused as the
		// call ends, gives back what it paid, as any refused retry does.
		if s := hostState(t, tr, "http://api.test/"); s.RetryBudget != DefaultRetryBudgetBurst-2 {
			t.Errorf("budget %v after three retries a Classifier made of refusals, want %v", s.RetryBudget, DefaultRetryBudgetBurst-2)
		}
	})
}

// TestMaxInFlightCanceledWhileWaiting: a caller that cancels while its
// attempt waits for a slot gets its context's error at once, and leaves
// the queue: the slot goes to the next waiter, and the host is free once
// the holder ends.
func TestMaxInFlightCanceledWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(i int, _ *http.Request) time.Duration {
			if i == 0 {
				return 10 * time.Second
			}
			return time.Second
		}}
		tr := New(srv, WithMaxInFlight(1))
		var holder sync.WaitGroup
		defer holder.Wait()
		holder.Go(func() { getIn(t, tr, context.Background(), "http://api.test/hold") })
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		var next sync.WaitGroup
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			_, err := getIn(t, tr, ctx, "http://api.test/canceled")
			errc <- err
		}()
		synctest.Wait()
		next.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/next"); code != 200 {
				t.Errorf("the next waiter: %d, %v", code, err)
			}
		})
		synctest.Wait()
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 1 || w != 2 {
			t.Errorf("%d in flight, %d waiting; want 1 and 2", n, w)
		}
		err := <-errc
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTooManyInFlight) {
			t.Errorf("canceled waiter: %v, want the context's error", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("the canceled waiter returned after %v, want 1s", d)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 1 || w != 1 {
			t.Errorf("after the cancel: %d in flight, %d waiting; want 1 and 1", n, w)
		}
		next.Wait()
		if got := time.Since(start); got != 11*time.Second {
			t.Errorf("the next waiter ended at %v, want 11s (the holder's end, then 1s)", got)
		}
		if got := srv.seen(); !slices.Equal(got, []string{"api.test/hold", "api.test/next"}) {
			t.Errorf("the server saw %q", got)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
			t.Errorf("at the end: %d in flight, %d waiting; want none", n, w)
		}
	})
}

// TestMaxInFlightPanicReleases: a panic in the base RoundTripper releases
// the attempt's slot: the waiter behind it gets it, and later calls go
// through at once.
func TestMaxInFlightPanicReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{
			latency: func(int, *http.Request) time.Duration { return time.Second },
			panics:  func(i int) bool { return i < 3 },
		}
		tr := New(srv, WithMaxInFlight(1), WithMaxRetries(0))
		boom := func() {
			mustPanic(t, "the panic was not propagated", func() {
				getIn(t, tr, context.Background(), "http://api.test/boom")
			})
		}
		var waiter sync.WaitGroup
		waiter.Go(boom)
		synctest.Wait()
		waiter.Go(boom) // waits behind the first, then panics too
		synctest.Wait()
		boom()
		waiter.Wait()
		start := time.Now()
		for i := range 3 {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/ok"); code != 200 {
				t.Fatalf("call %d after the panics: %d, %v", i, code, err)
			}
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("3 calls after the panics took %v, want 3s: a slot leaked", d)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
			t.Errorf("at the end: %d in flight, %d waiting; want none", n, w)
		}
	})
}

// TestMaxInFlightPanicTellsBreakerChange: the breakers' state changes an
// attempt made before the layers below it panicked are told once its slot
// is given back, as without WithMaxInFlight: the breaker that opened goes
// half-open with the attempt whose base panics, and the observer hears of
// it with the panic, not only once a later attempt passes the limit.
func TestMaxInFlightPanicTellsBreakerChange(t *testing.T) {
	for _, limit := range []int{0, 1} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &flightRT{
					status: func(int) int { return http.StatusInternalServerError },
					panics: func(i int) bool { return i == 1 },
				}
				var (
					mu      sync.Mutex
					changes []string
				)
				tr := New(srv, WithMaxInFlight(limit), WithMaxRetries(0),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second}),
					WithBreakerObserver(func(c BreakerChange) {
						mu.Lock()
						defer mu.Unlock()
						changes = append(changes, c.From.String()+"->"+c.To.String())
					}))
				if code, err := getIn(t, tr, context.Background(), "http://api.test/fail"); code != http.StatusInternalServerError {
					t.Fatalf("the failing call: %d, %v; want its 500", code, err)
				}
				time.Sleep(5 * time.Second) // the next attempt finds the breaker half-open
				mustPanic(t, "the base's panic was not propagated", func() {
					getIn(t, tr, context.Background(), "http://api.test/boom")
				})
				mu.Lock()
				defer mu.Unlock()
				if want := []string{"closed->open", "open->half-open"}; !slices.Equal(changes, want) {
					t.Errorf("the observer was told %q, want %q", changes, want)
				}
			})
		})
	}
}

// TestMaxInFlightBodyHoldsNoSlot: a slot is held until the response
// headers, not while the caller reads the body: a caller holding three
// open responses with a limit of 2 does not deadlock.
func TestMaxInFlightBodyHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var writers []*io.PipeWriter
		srv := &flightRT{body: func() io.ReadCloser {
			pr, pw := io.Pipe()
			writers = append(writers, pw)
			return pr
		}}
		tr := New(srv, WithMaxInFlight(2))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var resps []*http.Response
		start := time.Now()
		for i := range 3 {
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/stream", nil))
			if err != nil {
				t.Fatalf("call %d with %d bodies open: %v", i, len(resps), err)
			}
			resps = append(resps, resp)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the calls waited %v", d)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
			t.Errorf("with 3 bodies open: %d in flight, %d waiting; want none", n, w)
		}
		for i, resp := range resps {
			go func() {
				io.WriteString(writers[i], "ok")
				writers[i].Close()
			}()
			if b := readBody(t, resp); b != "ok" {
				t.Errorf("body %d: %q", i, b)
			}
		}
	})
}

// TestMaxInFlightRateLimitWaitHoldsNoSlot: an attempt that waits for the
// rate limiter holds no slot meanwhile: with a limit of 1, a write (a
// partition of its own) goes at once while a read waits a second for its
// turn; the read then takes the slot.
func TestMaxInFlightRateLimitWaitHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{}
		tr := New(srv, WithMaxInFlight(1), WithRateLimit(rate.Every(time.Second), 1))
		if code, err := getIn(t, tr, context.Background(), "http://api.test/first"); code != 200 {
			t.Fatalf("%d, %v", code, err)
		}
		start := time.Now()
		var read sync.WaitGroup
		read.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/paced"); code != 200 {
				t.Errorf("the paced read: %d, %v", code, err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("the paced read took %v, want 1s", d)
			}
		})
		synctest.Wait() // the read waits for its turn
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodPost, "http://api.test/write", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d != 0 {
			t.Errorf("the write waited %v behind the paced read, want no wait", d)
		}
		read.Wait()
		if got := srv.seen(); !slices.Equal(got, []string{"api.test/first", "api.test/write", "api.test/paced"}) {
			t.Errorf("the server saw %q", got)
		}
	})
}

// TestMaxInFlightHedging: a hedged copy takes a slot like any attempt; a
// copy that finds no free slot is not sent, and gives back the hedge
// allowance and the retry budget it took.
func TestMaxInFlightHedging(t *testing.T) {
	hedging := WithHedging(Hedging{Delay: 100 * time.Millisecond})
	t.Run("slot free", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &flightRT{latency: func(i int, _ *http.Request) time.Duration {
				if i == 0 {
					return time.Hour
				}
				return 10 * time.Millisecond
			}}
			tr := New(srv, WithMaxInFlight(2), hedging)
			var r Report
			if code, err := getIn(t, tr, WithReport(context.Background(), &r), "http://api.test/x"); code != 200 {
				t.Fatalf("%d, %v", code, err)
			}
			if r.Hedges != 1 || srv.maxSeen() != 2 {
				t.Errorf("%d hedges, %d at once at the server; want 1 and 2", r.Hedges, srv.maxSeen())
			}
			synctest.Wait()
			if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
				t.Errorf("at the end: %d in flight, %d waiting; want none", n, w)
			}
		})
	})
	// check runs one hedged call of a second against a host whose other
	// calls fill it, and checks that no copy was sent and that the host's
	// allowance and budget are whole after it.
	check := func(t *testing.T, tr *Transport, srv *flightRT, others func()) {
		t.Helper()
		req := newRequest(t, context.Background(), http.MethodGet, "http://api.test/a", nil)
		hb := tr.budgets.get(req)
		hedgeBefore, budgetBefore := hb.hedgeTokens.Load(), hb.tokens.Load()
		others()
		var r Report
		if code, err := getIn(t, tr, WithReport(context.Background(), &r), "http://api.test/a"); code != 200 {
			t.Fatalf("%d, %v", code, err)
		}
		if r.Hedges != 0 || r.Attempts != 1 {
			t.Errorf("Report %+v, want 1 attempt and no hedge", r)
		}
		if got := srv.seen(); slices.Contains(got[1:], "api.test/a") {
			t.Errorf("the server saw %q: a copy was sent", got)
		}
		if h, b := hb.hedgeTokens.Load(), hb.tokens.Load(); h != hedgeBefore || b != budgetBefore {
			t.Errorf("after the call, the allowance holds %d and the budget %d; want %d and %d, as before", h, b, hedgeBefore, budgetBefore)
		}
	}
	t.Run("host full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Second }}
			tr := New(srv, WithMaxInFlight(1), hedging)
			check(t, tr, srv, func() {})
			if got := srv.maxSeen(); got != 1 {
				t.Errorf("%d at once at the server, want 1", got)
			}
		})
	})
	// The copy finds a free slot when it is launched, then waits for the
	// rate limiter, meanwhile a write takes the last slot: the copy is
	// refused by the limit, after spending, and gives back what it took.
	t.Run("host full after the rate limiter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &flightRT{latency: func(_ int, r *http.Request) time.Duration {
				if r.Method == http.MethodPost {
					return time.Minute
				}
				return 2 * time.Second
			}}
			tr := New(srv, WithMaxInFlight(2), hedging, WithRateLimit(rate.Every(time.Second), 1))
			var writer sync.WaitGroup
			defer writer.Wait()
			writer.Add(1)
			check(t, tr, srv, func() {
				time.AfterFunc(200*time.Millisecond, func() {
					defer writer.Done()
					resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodPost, "http://api.test/b", nil))
					if err == nil {
						resp.Body.Close()
					}
				})
			})
			if got := srv.seen(); !slices.Equal(got, []string{"api.test/a", "api.test/b"}) {
				t.Errorf("the server saw %q, want the call and the write", got)
			}
		})
	})
}

// TestMaxInFlightPerHost: the limit applies to each host apart (the
// breaker's key): a full host does not hold back another; spellings of one
// host share its slots; a BreakerSettings.Key groups hosts.
func TestMaxInFlightPerHost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     func(*http.Request) string
		other   string
		waits   bool
		hostKey string
	}{
		{"another host", nil, "http://b.test/x", false, ""},
		{"another port", nil, "http://a.test:8080/x", false, ""},
		{"another scheme", nil, "https://a.test/x", false, ""},
		{"another spelling", nil, "http://A.TEST:80/x", true, ""},
		{"one key", func(*http.Request) string { return "all" }, "http://b.test/x", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &flightRT{latency: func(int, *http.Request) time.Duration { return time.Second }}
				tr := New(srv, WithMaxInFlight(1), WithBreaker(BreakerSettings{Key: tc.key}))
				var holder sync.WaitGroup
				defer holder.Wait()
				holder.Go(func() { getIn(t, tr, context.Background(), "http://a.test/hold") })
				synctest.Wait()
				start := time.Now()
				if code, err := getIn(t, tr, context.Background(), tc.other); code != 200 {
					t.Fatalf("%d, %v", code, err)
				}
				want := time.Second
				if tc.waits {
					want = 2 * time.Second
				}
				if d := time.Since(start); d != want {
					t.Errorf("the call to %s took %v, want %v", tc.other, d, want)
				}
			})
		})
	}
}

// TestMaxInFlightTableBounded: the table of hosts holds at most its
// limit; idle hosts make room for new ones. When every host it holds is
// busy, a new host's attempt goes without a limit rather than fail.
func TestMaxInFlightTableBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(_ int, r *http.Request) time.Duration {
			if strings.HasPrefix(r.URL.Path, "/hold") {
				return time.Minute
			}
			return 0
		}}
		tr := New(srv, WithMaxInFlight(1))
		tr.bulkhead.max = 4
		for i := range 20 {
			if code, err := getIn(t, tr, context.Background(), fmt.Sprintf("http://h%d.test/x", i)); code != 200 {
				t.Fatalf("host %d: %d, %v", i, code, err)
			}
			if n := tr.bulkhead.len(); n > 4 {
				t.Fatalf("after host %d the table holds %d keys, want at most 4", i, n)
			}
		}
		// A host spelled two ways takes two keys.
		getIn(t, tr, context.Background(), "http://H1.test/x")
		if n := tr.bulkhead.len(); n > 4 {
			t.Fatalf("the table holds %d keys, want at most 4", n)
		}
		var busy sync.WaitGroup
		for i := range 4 {
			busy.Go(func() { getIn(t, tr, context.Background(), fmt.Sprintf("http://busy%d.test/hold", i)) })
		}
		synctest.Wait()
		if n := tr.bulkhead.len(); n != 4 {
			t.Fatalf("the table holds %d keys, want the 4 busy hosts", n)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if code, err := getIn(t, tr, context.Background(), "http://new.test/hold"); code != 200 {
					t.Errorf("new host: %d, %v", code, err)
				}
			})
		}
		wg.Wait()
		if d := time.Since(start); d != time.Minute {
			t.Errorf("two calls to a host the full table cannot hold took %v, want 1m (no limit)", d)
		}
		if n := tr.bulkhead.len(); n > 4 {
			t.Fatalf("the table holds %d keys, want at most 4", n)
		}
		busy.Wait()
		// The busy hosts are done: a new host finds room again.
		if code, err := getIn(t, tr, context.Background(), "http://last.test/x"); code != 200 {
			t.Fatalf("%d, %v", code, err)
		}
		if n, _ := slotCounts(t, tr, "http://last.test/"); n != 0 || tr.bulkhead.table.load(breakerKey{"http", "last.test"}) == nil {
			t.Errorf("the last host is not in the table")
		}
	})
}

// TestSlotsWaitNotStarted: a wait for a slot whose deadline has passed is
// not started: it fails at once and leaves no waiter behind.
func TestSlotsWaitNotStarted(t *testing.T) {
	var s hostSlots
	if !s.tryAcquire(1) {
		t.Fatal("tryAcquire on an empty host failed")
	}
	_, err := s.wait(context.Background(), nil, 1, time.Now().Add(-time.Second), breakerKey{"http", "api.test"}, false)
	if !errors.Is(err, ErrTooManyInFlight) {
		t.Errorf("wait past its deadline: %v, want ErrTooManyInFlight", err)
	}
	if v := s.state.Load(); v != 1 {
		t.Errorf("state %#x after the refusal, want 1 in flight and no waiter", v)
	}
	s.release()
	if v := s.state.Load(); v != 0 {
		t.Errorf("state %#x after the release, want 0", v)
	}
}

// TestBulkheadStress runs goroutines that take and give back slots of 12
// hosts, in a table of 6 keys, some waiting with short deadlines or
// canceled: no host ever has more attempts holding one of its slots than
// the limit (a host evicted and made again would have two sets of slots),
// and at the end every slot and every waiter is gone. (An attempt to a
// host the full table cannot hold goes without a limit, and holds no
// slot.)
func TestBulkheadStress(t *testing.T) {
	const limit, hosts, workers, rounds = 2, 12, 24, 300
	b := newBulkhead(limit, nil)
	b.max = 6
	var (
		mu      sync.Mutex
		holding [hosts]int
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rnd := lockedRand(uint64(w))
			for i := range rounds {
				h := int(rnd(hosts))
				// A slot lost would leave waiters to their deadline:
				// a long one, for the check at the end to see it.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				switch rnd(4) {
				case 0:
					cancel()
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rnd(50))*time.Microsecond)
				case 1:
					cancel() // canceled before it waits
				}
				req := newRequest(t, ctx, http.MethodGet, fmt.Sprintf("http://h%d.test/%d", h, i), nil)
				s, err := b.acquire(req, nil)
				cancel()
				if err != nil || s == nil {
					continue
				}
				mu.Lock()
				holding[h]++
				if holding[h] > limit {
					t.Errorf("host %d: %d attempts hold a slot, limit %d", h, holding[h], limit)
				}
				mu.Unlock()
				if rnd(2) == 0 {
					time.Sleep(time.Duration(rnd(20)) * time.Microsecond)
				}
				mu.Lock()
				holding[h]--
				mu.Unlock()
				s.release()
			}
		})
	}
	wg.Wait()
	if n := b.len(); n > 6 {
		t.Errorf("the table holds %d keys, want at most 6", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := b.lru.head; s != nil; s = s.next {
		if v := s.state.Load(); v != 0 || s.waiters.head != nil {
			t.Errorf("a host ends with state %#x, queue %v; want nothing in flight or waiting", v, s.waiters.head)
		}
	}
}

// stalledBody is a response body that sends its prefix, then nothing until
// ctx ends.
type stalledBody struct {
	prefix *strings.Reader
	ctx    context.Context
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if b.prefix.Len() > 0 {
		return b.prefix.Read(p)
	}
	<-b.ctx.Done()
	return 0, context.Cause(b.ctx)
}

func (b *stalledBody) Close() error { return nil }

// TestMaxInFlightEnvelopeReadHoldsSlot: an attempt holds its slot while
// the Transport reads the envelope of its error response, within the
// attempt; a body that stalls holds it 2s at most (maxReadWait), then the
// next attempt goes.
func TestMaxInFlightEnvelopeReadHoldsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu       sync.Mutex
			arrivals []time.Duration
		)
		start := time.Now()
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			arrivals = append(arrivals, time.Since(start))
			first := len(arrivals) == 1
			mu.Unlock()
			if first {
				body := &stalledBody{prefix: strings.NewReader(`{"error":`), ctx: req.Context()}
				return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxInFlight(1), WithMaxRetries(0))
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			})
			synctest.Wait()
		}
		wg.Wait()
		if want := []time.Duration{0, maxReadWait}; !slices.Equal(arrivals, want) {
			t.Errorf("the server saw attempts at %v, want %v: the second waits for the first's envelope, 2s at most", arrivals, want)
		}
	})
}

// TestMaxInFlightHammer: 64 callers hammer one host through the whole
// chain (retries, hedged copies, per-call options, reads of the response
// within the attempt, cancellations, a base that panics, 429s, writes,
// bodies left open, a breaker that opens and half-opens): the host never
// has more attempts at once than the limit, no slot is left held or
// waited for once they are done, and the host's next calls go through.
// The storms' draws are seeded, but 64 callers share them in the order the
// scheduler runs them: about one storm in 300 never opens the breaker, so
// the check that the storms are what the test says counts all three.
func TestMaxInFlightHammer(t *testing.T) {
	const limit = 3
	var opened, panicked atomic.Int64
	for seed := range 3 {
		synctest.Test(t, func(t *testing.T) {
			rnd := lockedRand(uint64(seed))
			var healthy atomic.Bool
			start := time.Now()
			srv := &flightRT{
				latency: func(int, *http.Request) time.Duration { return time.Duration(rnd(50)) * time.Millisecond },
				status: func(int) int {
					switch {
					case healthy.Load():
						return http.StatusOK
					case time.Since(start)/(200*time.Millisecond)%2 == 1 && rnd(4) != 0, rnd(10) == 0:
						// Outages of 200ms, every 400ms.
						return http.StatusServiceUnavailable
					case rnd(10) == 0:
						return http.StatusTooManyRequests
					}
					return http.StatusOK
				},
				panics: func(int) bool {
					p := !healthy.Load() && rnd(10) == 0
					if p {
						panicked.Add(1)
					}
					return p
				},
			}
			tr := New(srv, WithMaxInFlight(limit), WithBackoff(time.Millisecond, 5*time.Millisecond),
				WithBreaker(BreakerSettings{MinRequests: 10, FailureRatio: 0.4, OpenTimeout: 100 * time.Millisecond, HalfOpenRequests: 2, ProbeTimeout: time.Hour}),
				WithHedging(Hedging{Delay: 5 * time.Millisecond}),
				WithBreakerObserver(func(c BreakerChange) {
					if c.To == BreakerOpen {
						opened.Add(1)
					}
				}))
			var wg sync.WaitGroup
			for g := range 64 {
				wg.Go(func() {
					r := lockedRand(uint64(1000*seed + g))
					for i := 0; time.Since(start) < time.Second; i++ {
						func() {
							defer func() { recover() }() // the base's panics
							ctx, cancel := context.WithCancel(context.Background())
							defer cancel()
							switch r(4) {
							case 0:
								time.AfterFunc(time.Duration(r(30))*time.Millisecond, cancel)
							case 1:
								ctx = WithCallOptions(ctx, WithBufferedResponse(100), WithAttemptTimeout(time.Duration(1+r(30))*time.Millisecond))
							case 2:
								ctx = WithCallOptions(ctx, WithMaxRetries(math.MaxInt), WithMaxElapsed(time.Hour))
							}
							method := http.MethodGet
							if r(3) == 0 {
								method = http.MethodPost
							}
							resp, err := tr.RoundTrip(newRequest(t, ctx, method, fmt.Sprintf("http://api.test/%d", i), nil))
							if err == nil && r(2) == 0 { // else left open
								io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
							}
							time.Sleep(time.Duration(r(20)) * time.Millisecond)
						}()
					}
				})
			}
			wg.Wait()
			if m := srv.maxSeen(); m > limit {
				t.Errorf("the host had %d attempts at once, limit %d", m, limit)
			}
			healthy.Store(true)
			time.Sleep(time.Second) // the breaker's OpenTimeout, and the copies that lost
			for i := range 3 {
				n := len(srv.seen())
				if code, err := getIn(t, tr, context.Background(), "http://api.test/after"); code != http.StatusOK || len(srv.seen()) == n {
					t.Errorf("call %d after the storm: %d, %v; the server saw %d requests", i, code, err, len(srv.seen())-n)
				}
			}
			synctest.Wait() // the copies that lost end
			s, err := tr.HostState(newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			if err != nil || s.InFlight != 0 || s.Waiting != 0 || s.Breaker != BreakerClosed {
				t.Errorf("after the storm: %d in flight, %d waiting, breaker %v (%v); want 0, 0, closed", s.InFlight, s.Waiting, s.Breaker, err)
			}
		})
	}
	if opened.Load() == 0 || panicked.Load() == 0 {
		t.Errorf("the breaker opened %d times, the base panicked %d times in three storms: the storms are not what the test says", opened.Load(), panicked.Load())
	}
}

// TestMaxInFlightBreakerObserverCallsHost: a breaker observer may use the
// Transport (see WithBreakerObserver), the host its change is about
// included: with a limit of 1, an observer told that the host's breaker
// opened, which calls the host, is refused at once by the open breaker,
// rather than waiting for the slot that the attempt that told it holds;
// and the caller gets its 500 at once.
func TestMaxInFlightBreakerObserverCallsHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{status: func(i int) int {
			if i == 0 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}}
		var (
			tr       *Transport
			observed []error
		)
		tr = New(srv, WithMaxInFlight(1), WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithBreakerObserver(func(c BreakerChange) {
				if c.To == BreakerOpen {
					_, err := getIn(t, tr, context.Background(), "http://api.test/status")
					observed = append(observed, err)
				}
			}))
		start := time.Now()
		code, err := getIn(t, tr, context.Background(), "http://api.test/x")
		if code != http.StatusInternalServerError || err != nil {
			t.Errorf("the call: %d, %v; want its 500", code, err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the call took %v, want no wait: its observer waited for the slot its own attempt held", d)
		}
		if len(observed) != 1 || !errors.Is(observed[0], ErrCircuitOpen) {
			t.Errorf("the observer's call: %v; want one refused with ErrCircuitOpen", observed)
		}
		if n, w := slotCounts(t, tr, "http://api.test/"); n != 0 || w != 0 {
			t.Errorf("at the end: %d in flight, %d waiting; want none", n, w)
		}
	})
}

// TestMaxInFlightWaitsForASlotBeforeTheBreaker: the limit of attempts in
// flight is above the breakers in the chain. A call that finds its host
// full while the half-open breaker's probe holds the slot waits for the
// slot, and asks the breaker once it has it: the probe's success has
// closed the breaker by then, and the call is sent. Asked first, the
// breaker would have refused it at once, for a probe it no longer needed.
func TestMaxInFlightWaitsForASlotBeforeTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{
			status: func(i int) int {
				if i == 0 {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			},
			latency: func(_ int, req *http.Request) time.Duration {
				if req.URL.Path == "/probe" {
					return 10 * time.Second
				}
				return 0
			},
		}
		tr := New(srv, WithMaxInFlight(1), WithMaxRetries(0), WithAttemptTimeout(30*time.Second), WithMaxElapsed(time.Minute),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second, HalfOpenRequests: 1}))
		if code, err := getIn(t, tr, context.Background(), "http://api.test/fail"); code != http.StatusInternalServerError || err != nil {
			t.Fatalf("the failing call: %d, %v; want its 500", code, err)
		}
		time.Sleep(5 * time.Second) // half-open
		var probe sync.WaitGroup
		defer probe.Wait()
		probe.Go(func() {
			if code, err := getIn(t, tr, context.Background(), "http://api.test/probe"); code != http.StatusOK || err != nil {
				t.Errorf("the probe: %d, %v; want 200", code, err)
			}
		})
		synctest.Wait()
		time.Sleep(time.Second)
		start := time.Now()
		code, err := getIn(t, tr, context.Background(), "http://api.test/queued")
		if code != http.StatusOK || err != nil || time.Since(start) != 9*time.Second {
			t.Errorf("a call queued behind the probe's slot: %d, %v after %v; want 200 after 9s, when the probe's answer closed the breaker",
				code, err, time.Since(start))
		}
		if got := srv.seen(); len(got) != 3 {
			t.Errorf("the server saw %q, want the failure, the probe and the queued call", got)
		}
	})
}
