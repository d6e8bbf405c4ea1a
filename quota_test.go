package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/resilienttest"
)

// memQuota is a QuotaStore in memory, for the tests of the hooks: the
// partitions of several Transports share a pause, the learned quota and a
// limiter at 95% of it, which Reset clears. A partition's take, when set,
// replaces Take.
type memQuota struct {
	mu    sync.Mutex
	names []string // in the order asked
	parts map[string]*memPart
}

type memPart struct {
	mu            sync.Mutex
	pause         time.Time
	limit         int
	window        time.Duration
	lim           *rate.Limiter
	takes, learns int
	resets        int
	pauses        []time.Time
	take          func(n int, now time.Time) (time.Duration, bool, <-chan struct{})
	changed       chan struct{} // closed when the pause changes; nil until asked for
}

func (m *memQuota) Partition(name string) QuotaPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names = append(m.names, name)
	if m.parts == nil {
		m.parts = make(map[string]*memPart)
	}
	p := m.parts[name]
	if p == nil {
		p = new(memPart)
		m.parts[name] = p
	}
	return p
}

func (m *memQuota) part(name string) *memPart {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.parts[name]
}

func (p *memPart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.takes++
	if p.take != nil {
		return p.take(p.takes, now)
	}
	if p.lim == nil {
		return 0, true, nil
	}
	return p.lim.ReserveN(now, 1).DelayFrom(now), true, nil
}

func (p *memPart) PauseUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pause
}

func (p *memPart) Pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pauses = append(p.pauses, until)
	if until.After(p.pause) {
		p.pause = until
		p.changedLocked()
	}
}

func (p *memPart) PauseChanged() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

// changedLocked tells the waiters of PauseChanged. p.mu is held.
func (p *memPart) changedLocked() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

func (p *memPart) Learn(info RateLimitInfo, window time.Duration) {
	limit := info.Limit
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learns++
	if limit == p.limit && window == p.window {
		return
	}
	p.limit, p.window = limit, window
	p.lim = rate.NewLimiter(rate.Limit(0.95*float64(limit)/window.Seconds()), 1)
}

func (p *memPart) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resets++
	p.pause, p.limit, p.window, p.lim = time.Time{}, 0, 0, nil
	p.changedLocked()
}

// unwatchedQuota is a QuotaStore whose partitions implement QuotaResetter
// but not QuotaWatcher.
type unwatchedQuota struct{ m *memQuota }

func (q unwatchedQuota) Partition(name string) QuotaPartition {
	p := q.m.Partition(name).(*memPart)
	return struct {
		QuotaPartition
		QuotaResetter
	}{p, p}
}

// plainQuota is a QuotaStore whose partitions implement QuotaPartition
// only: no QuotaResetter.
type plainQuota struct{ m *memQuota }

func (q plainQuota) Partition(name string) QuotaPartition {
	return struct{ QuotaPartition }{q.m.Partition(name)}
}

// get sends one GET through tr and returns its status.
func get(t *testing.T, tr http.RoundTripper, url string) int {
	t.Helper()
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, url, nil))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	readBody(t, resp)
	return resp.StatusCode
}

// TestQuotaStoreSharesPause proves that a 429 received by one Transport
// pauses another that shares its store: the other's next attempt waits the
// pause, and reaches the server only after it.
func TestQuotaStoreSharesPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithQuota(resilienttest.Quota{Limit: 1000, ResetFormat: resilienttest.IETF}),
			resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.Normal(), resilienttest.RateLimited(5*time.Second)))
		defer srv.Close()
		store := new(memQuota)
		var seenA collector[Attempt]
		a := New(srv.Transport(), WithQuotaStore(store), WithObserver(seenA.add))
		b := New(srv.Transport(), WithQuotaStore(store))
		url := srv.URL + "/v1/usage"

		if got := get(t, a, url); got != 200 {
			t.Fatalf("A's first call: status %d", got)
		}
		start := time.Now()
		done := make(chan int)
		go func() { done <- get(t, b, url) }() // 429, then its retry after 5s
		synctest.Wait()
		part := store.part("http://altyaa.test reads")
		if part == nil || len(part.pauses) != 1 || !part.pauses[0].Equal(start.Add(5*time.Second)) {
			t.Fatalf("store's pauses = %v, want one until %v", part.pauses, start.Add(5*time.Second))
		}
		if got := get(t, a, url); got != 200 {
			t.Fatalf("A's second call: status %d", got)
		}
		if got := <-done; got != 200 {
			t.Fatalf("B's call: status %d", got)
		}
		att := seenA.all()
		if len(att) != 2 || att[1].LocalWait < 5*time.Second || att[1].LocalWait > 6*time.Second {
			t.Fatalf("A's attempts: %d, second waited %v, want 5s to 6s", len(att), att[1].LocalWait)
		}
		if st := srv.Stats(); st.Requests != 4 || st.RateLimited != 1 {
			t.Errorf("server saw %d requests and sent %d 429s, want 4 and 1", st.Requests, st.RateLimited)
		}
	})
}

// TestQuotaStorePacesByTakes proves that a partition with a store paces by
// the store's tokens, not by a limiter of its own, and gives the store the
// quota it learned.
func TestQuotaStorePacesByTakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithQuota(resilienttest.Quota{Limit: 60, Window: time.Minute, ResetFormat: resilienttest.IETF}))
		defer srv.Close()
		store := new(memQuota)
		tr := New(srv.Transport(), WithQuotaStore(store))
		start := time.Now()
		for range 5 {
			if got := get(t, tr, srv.URL+"/v1/usage"); got != 200 {
				t.Fatalf("status %d", got)
			}
		}
		// Each call takes a token: the first one's at once, the store
		// knowing no quota yet; the four others' at 0.95 a second, the
		// first of them at once.
		elapsed := time.Since(start)
		perToken := 0.95
		want := 3 * time.Duration(float64(time.Second)/perToken)
		if elapsed < want || elapsed > want+time.Millisecond {
			t.Errorf("5 calls took %v, want %v", elapsed, want)
		}
		part := store.part("http://altyaa.test reads")
		if part.takes != 5 || part.learns != 5 || part.limit != 60 || part.window != time.Minute {
			t.Errorf("store: %d takes, %d learns, quota %d per %v; want 5, 5, 60 per 1m0s", part.takes, part.learns, part.limit, part.window)
		}
		p := rlOf(t, tr).part(partKey{scheme: "http", host: "altyaa.test"})
		if p == nil || p.lim != nil || p.quota == nil {
			t.Errorf("partition: %+v, want one without a limiter of its own, with the store's state", p)
		}
	})
}

// TestQuotaStoreRetry proves the Take without a token: the attempt waits
// until the store's retry channel is closed, or for the delay, then asks
// again; a delay that is not positive is taken as a millisecond.
func TestQuotaStoreRetry(t *testing.T) {
	for _, tt := range []struct {
		name    string
		closeAt time.Duration // 0: never closed
		delay   time.Duration
		want    time.Duration
	}{
		{"closed", time.Second, time.Minute, time.Second},
		{"delay", 0, 2 * time.Second, 2 * time.Second},
		{"zero delay", 0, 0, minQuotaRetry},
		{"negative delay", 0, -time.Second, minQuotaRetry},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
					resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}))
				defer srv.Close()
				store := new(memQuota)
				var seen collector[Attempt]
				tr := New(srv.Transport(), WithQuotaStore(store), WithObserver(seen.add))
				url := srv.URL + "/v1/usage"
				get(t, tr, url) // creates the partition, and takes its token
				retry := make(chan struct{})
				store.part("http://altyaa.test reads").take = func(n int, _ time.Time) (time.Duration, bool, <-chan struct{}) {
					if n == 2 {
						return tt.delay, false, retry
					}
					return 0, true, nil
				}
				if tt.closeAt > 0 {
					time.AfterFunc(tt.closeAt, func() { close(retry) })
				}
				get(t, tr, url)
				if w := seen.all()[1].LocalWait; w != tt.want {
					t.Errorf("waited %v, want %v", w, tt.want)
				}
				if n := store.part("http://altyaa.test reads").takes; n != 3 {
					t.Errorf("%d takes, want 3 (the first call's, and the second's two)", n)
				}
			})
		})
	}
}

// TestQuotaStorePastDeadline proves that a token the store holds for later
// than the call's deadline, or than WithMaxRetryAfter's limit (the store's
// pace is bounded as the server's is without a store), is refused at once
// with ErrRateLimited, without reaching the server, instead of being
// waited for until the call's budget ends.
func TestQuotaStorePastDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		due      time.Duration // when the store's token is due
		deadline time.Duration // the context's; 0 for none
	}{
		{"past the deadline", time.Minute, 10 * time.Second},
		{"past WithMaxRetryAfter", 3 * time.Minute, 0}, // within the call's budget of 5 minutes
	} {
		synctest.Test(t, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}))
			defer srv.Close()
			store := new(memQuota)
			tr := New(srv.Transport(), WithQuotaStore(store), WithMaxRetries(0))
			url := srv.URL + "/v1/usage"
			get(t, tr, url)
			store.part("http://altyaa.test reads").take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) {
				return tc.due, true, nil
			}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, url, nil))
			if !errors.Is(err, ErrRateLimited) || time.Since(start) != 0 {
				t.Fatalf("%s: err = %v after %v, want ErrRateLimited at once", tc.name, err, time.Since(start))
			}
			if n := srv.Stats().Requests; n != 1 {
				t.Errorf("%s: server saw %d requests, want 1", tc.name, n)
			}
		})
	}
}

// panickyPart is a memPart whose PauseUntil panics while panicking is set.
type panickyPart struct {
	*memPart
	panicking *atomic.Bool
}

func (p panickyPart) PauseUntil() time.Time {
	if p.panicking.Load() {
		panic("store exploded")
	}
	return p.memPart.PauseUntil()
}

// TestQuotaStorePanicReleasesPartition proves that a store that panics in
// Take or PauseUntil, which the rate limiter calls with its partition's
// lock held, leaves the lock free: the panic goes to the caller, and the
// calls that follow reach the server. (Held, the lock hung every later
// call to the host, whatever its context said.) The same holds when
// PauseUntil panics while HostState reads the partition's pause. (HostState
// unlocked the partition a second time after the rate limiter released it
// for the panic: "sync: unlock of unlocked mutex", a fatal error that no
// recover stops, which ended the process.)
func TestQuotaStorePanicReleasesPartition(t *testing.T) {
	for _, where := range []string{"Take", "PauseUntil", "HostState"} {
		t.Run(where, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}))
			defer srv.Close()
			store := new(memQuota)
			var panicking atomic.Bool
			tr := New(srv.Transport(), WithMaxRetries(0), WithQuotaStore(storeFunc(func(name string) QuotaPartition {
				p := store.Partition(name).(*memPart)
				if where != "Take" {
					return panickyPart{p, &panicking}
				}
				p.take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) {
					if panicking.Load() {
						panic("store exploded")
					}
					return 0, true, nil
				}
				return p
			})))
			url := srv.URL + "/v1/usage"
			get(t, tr, url) // creates the partition
			panicking.Store(true)
			mustPanic(t, "the store's panic was not propagated", func() {
				req := newRequest(t, context.Background(), http.MethodGet, url, nil)
				if where == "HostState" {
					tr.HostState(req)
				} else {
					tr.RoundTrip(req)
				}
			})
			panicking.Store(false)
			p := rlOf(t, tr).part(partKey{scheme: "http", host: "altyaa.test"})
			if !p.mu.TryLock() {
				t.Fatal("the partition's lock is still held after the store's panic")
			}
			p.mu.Unlock()
			if code := get(t, tr, url); code != 200 {
				t.Errorf("call after the panic: %d, want 200", code)
			}
		})
	}
}

// learnPanicker is a memPart whose Learn and Pause panic while panicking
// is set.
type learnPanicker struct {
	*memPart
	panicking *atomic.Bool
}

func (p learnPanicker) Learn(info RateLimitInfo, window time.Duration) {
	if p.panicking.Load() {
		panic("store exploded")
	}
	p.memPart.Learn(info, window)
}

func (p learnPanicker) Pause(until time.Time) {
	if p.panicking.Load() {
		panic("store exploded")
	}
	p.memPart.Pause(until)
}

// TestQuotaStorePanicEndsFlightOnce proves that a store that panics in
// Learn or Pause, which the rate limiter calls after it ended the
// attempt's flight, leaves the partition's count of attempts in flight at
// zero: the panic goes to the caller, and the flight is ended once. (Ended
// twice, the count went to -1, so that the quota gate let one attempt more
// than the server's remaining quota through for good.)
func TestQuotaStorePanicEndsFlightOnce(t *testing.T) {
	for _, where := range []string{"Learn", "Pause"} {
		t.Run(where, func(t *testing.T) {
			steps := []resilienttest.Step{resilienttest.Normal(), resilienttest.Normal()}
			if where == "Pause" {
				steps[1] = resilienttest.RateLimited(time.Second)
			}
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}),
				resilienttest.WithScript(resilienttest.RouteUsage, steps...))
			defer srv.Close()
			store := new(memQuota)
			var panicking atomic.Bool
			// In memory: the response the panic loses holds no connection.
			tr := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(storeFunc(func(name string) QuotaPartition {
				return learnPanicker{store.Partition(name).(*memPart), &panicking}
			})))
			url := srv.URL + "/v1/usage"
			get(t, tr, url) // creates the partition
			panicking.Store(true)
			mustPanic(t, "the store's panic was not propagated", func() {
				tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, url, nil))
			})
			p := rlOf(t, tr).part(partKey{scheme: "http", host: "altyaa.test"})
			p.mu.Lock()
			inflight := p.inflight
			p.mu.Unlock()
			if inflight != 0 {
				t.Errorf("attempts in flight after the store's panic in %s: %d, want 0", where, inflight)
			}
		})
	}
}

// storeFunc is a QuotaStore made of its Partition method.
type storeFunc func(name string) QuotaPartition

func (f storeFunc) Partition(name string) QuotaPartition { return f(name) }

// TestQuotaStorePartitionNames proves the names a store is asked for: the
// default partitions by scheme, host and class, and WithRateLimitKey's.
func TestQuotaStorePartitionNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithQuota(resilienttest.Quota{Limit: 100, PerClass: true}))
		defer srv.Close()
		store := new(memQuota)
		tr := New(srv.Transport(), WithQuotaStore(store))
		get(t, tr, srv.URL+"/v1/usage")
		get(t, tr, srv.URL+"/v1/usage")
		req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/v1/media/upload-url", nil)
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		keyed := New(srv.Transport(), WithQuotaStore(store), WithRateLimitKey(func(*http.Request) string { return "key-1" }))
		get(t, keyed, srv.URL+"/v1/usage")
		want := []string{"http://altyaa.test reads", "http://altyaa.test writes", "key-1"}
		if !slices.Equal(store.names, want) {
			t.Errorf("names = %q, want %q", store.names, want)
		}
	})
}

// TestWithQuotaStoreNil proves that a nil store restores the default, and
// that a Transport without a store paces by its own limiter.
func TestWithQuotaStoreNil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}))
		defer srv.Close()
		tr := New(srv.Transport(), WithQuotaStore(new(memQuota)), WithQuotaStore(nil))
		if rl := rlOf(t, tr); rl.quota != nil {
			t.Fatalf("store = %v, want nil", rl.quota)
		}
		get(t, tr, srv.URL+"/v1/usage")
		p := rlOf(t, tr).part(partKey{scheme: "http", host: "altyaa.test"})
		if p == nil || p.quota != nil || p.lim == nil {
			t.Errorf("partition: %+v, want its own limiter and no store", p)
		}
	})
}

// throttlingServer answers a 429 with a Retry-After of retryAfter on
// /throttle, and on every other path a 200 that announces a quota of 1000.
func throttlingServer(retryAfter string) *recServer {
	return &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/throttle" {
			throttle(w, retryAfter)
			return
		}
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "999")
		w.Header().Set("X-RateLimit-Reset", "60")
	}}
}

// fleetWaitingOutAPause makes two members of a fleet on store, A and B,
// over a server (throttlingServer("30")) that B called once: A's call is
// answered 429 with Retry-After: 30, which pauses the fleet's partition,
// and B's next call waits that pause out when fleetWaitingOutAPause
// returns, in a synctest bubble. done receives the status of B's call.
func fleetWaitingOutAPause(t *testing.T, store QuotaStore) (srv *recServer, a *Transport, done <-chan int) {
	t.Helper()
	srv = throttlingServer("30")
	a = New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(store))
	cb := &http.Client{Transport: New(handlerRT{srv}, WithQuotaStore(store))}
	if code, err := do(t, cb, "GET", "https://api.test/x"); code != 200 {
		t.Fatalf("B's first call: %d, %v", code, err)
	}
	if code, _ := do(t, &http.Client{Transport: a}, "GET", "https://api.test/throttle"); code != 429 {
		t.Fatalf("A's call: %d, want 429", code)
	}
	ch := make(chan int)
	go func() {
		code, _ := do(t, cb, "GET", "https://api.test/x")
		ch <- code
	}()
	synctest.Wait() // B waits out the fleet's pause
	return srv, a, ch
}

// TestResetHostResetsQuotaStore proves that ResetHost clears the shared
// state of the host's partitions when the store's partitions implement
// QuotaResetter: a Transport paused through the store by another's 429
// sends again once the other calls ResetHost, and the partitions of other
// hosts keep their pause. A store whose partitions do not implement it
// keeps its pause, for the Transport that called ResetHost too.
func TestResetHostResetsQuotaStore(t *testing.T) {
	for _, resetter := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			srv := throttlingServer("3600")
			mem := new(memQuota)
			var store QuotaStore = mem
			if !resetter {
				store = plainQuota{mem}
			}
			a := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(store))
			b := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(store))
			ca, cb := &http.Client{Transport: a}, &http.Client{Transport: b}
			hosts := []string{"https://api.test", "https://other.test"}
			for _, h := range hosts {
				if code, err := do(t, cb, "GET", h+"/x"); code != 200 {
					t.Fatalf("B's first call to %s: %d, %v", h, code, err)
				}
				do(t, ca, "GET", h+"/throttle")
				for name, c := range map[string]*http.Client{"A": ca, "B": cb} {
					if _, err := do(t, c, "GET", h+"/x"); !errors.Is(err, ErrRateLimited) {
						t.Fatalf("%s's call to %s after the 429: %v, want ErrRateLimited", name, h, err)
					}
				}
			}
			a.ResetHost("api.test")
			for name, c := range map[string]*http.Client{"A": ca, "B": cb} {
				code, err := do(t, c, "GET", "https://api.test/x")
				if resetter && code != 200 {
					t.Errorf("%s's call after A's ResetHost: %d, %v; want 200", name, code, err)
				}
				if !resetter && !errors.Is(err, ErrRateLimited) {
					t.Errorf("%s's call after A's ResetHost, without QuotaResetter: %d, %v; want ErrRateLimited", name, code, err)
				}
				if _, err := do(t, c, "GET", "https://other.test/x"); !errors.Is(err, ErrRateLimited) {
					t.Errorf("%s: ResetHost cleared another host's shared pause: %v", name, err)
				}
			}
			want := 0
			if resetter {
				want = 1
			}
			if n := mem.part("https://api.test reads").resets; n != want {
				t.Errorf("api.test's partition reset %d times, want %d", n, want)
			}
			if n := mem.part("https://other.test reads").resets; n != 0 {
				t.Errorf("other.test's partition reset %d times, want 0", n)
			}
		})
	}
}

// TestResetHostWakesFleetWaiters proves QuotaWatcher: an attempt of B
// already waiting out the fleet's pause, set by A's 429, goes as soon as A
// calls ResetHost, when the store's partitions tell a change of their
// pause; without it, it waits the pause out.
func TestResetHostWakesFleetWaiters(t *testing.T) {
	for _, watched := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			mem := new(memQuota)
			var store QuotaStore = mem
			if !watched {
				store = unwatchedQuota{mem}
			}
			srv, a, done := fleetWaitingOutAPause(t, store)
			start := time.Now()
			if n := len(srv.seen("")); n != 2 {
				t.Fatalf("server saw %d requests before the reset, want 2", n)
			}
			a.ResetHost("api.test")
			if code := <-done; code != 200 {
				t.Fatalf("B's call: %d, want 200", code)
			}
			waited := time.Since(start)
			if watched && waited != 0 {
				t.Errorf("B's waiting call went %v after A's ResetHost, want at once", waited)
			}
			if !watched && waited < 30*time.Second {
				t.Errorf("B's waiting call went after %v without QuotaWatcher, want the pause's 30s", waited)
			}
			if n := len(srv.seen("")); n != 3 {
				t.Errorf("server saw %d requests, want 3", n)
			}
		})
	}
}

// closedWatch is a QuotaStore whose partitions hand out the same closed
// channel from PauseChanged, as a careless store might.
type closedWatch struct {
	m     *memQuota
	ch    chan struct{}
	calls *int
	mu    *sync.Mutex
}

func (q closedWatch) Partition(name string) QuotaPartition {
	return closedWatchPart{q.m.Partition(name), q}
}

type closedWatchPart struct {
	QuotaPartition
	q closedWatch
}

func (p closedWatchPart) PauseChanged() <-chan struct{} {
	p.q.mu.Lock()
	*p.q.calls++
	p.q.mu.Unlock()
	return p.q.ch
}

// TestQuotaWatcherClosedChannel proves that a QuotaWatcher handing out a
// channel already closed does not make a waiting attempt spin: after one
// wake that finds the pause unchanged, it waits on its timer, and goes
// when the pause ends.
func TestQuotaWatcherClosedChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := throttlingServer("30")
		var calls int
		store := closedWatch{m: new(memQuota), ch: make(chan struct{}), calls: &calls, mu: new(sync.Mutex)}
		close(store.ch)
		a := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(store))
		b := New(handlerRT{srv}, WithQuotaStore(store))
		ca, cb := &http.Client{Transport: a}, &http.Client{Transport: b}
		if code, err := do(t, cb, "GET", "https://api.test/x"); code != 200 {
			t.Fatalf("B's first call: %d, %v", code, err)
		}
		do(t, ca, "GET", "https://api.test/throttle")
		store.mu.Lock()
		before := calls
		store.mu.Unlock()
		start := time.Now()
		if code, err := do(t, cb, "GET", "https://api.test/x"); code != 200 {
			t.Fatalf("B's call: %d, %v", code, err)
		}
		if waited := time.Since(start); waited < 30*time.Second {
			t.Errorf("B's call went after %v, want the pause's 30s", waited)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		// One look at the pause, woken once; then each look asks twice
		// (a channel found closed is asked for again: see pauseChanged).
		if n := calls - before; n > 6 {
			t.Errorf("PauseChanged called %d times for one wait, want a few", n)
		}
	})
}

// TestQuotaStoreWithoutTokensIsBounded: a store that has no token to give
// (Take without ok, again and again) holds an attempt no longer than a
// server may ask to wait (WithMaxRetryAfter), then the attempt is refused
// with ErrRateLimited, as a spent quota's would be: it is not held to the
// call's deadline (5 minutes by default).
func TestQuotaStoreWithoutTokensIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		part, send, _ := quotaMember(t)
		part.mu.Lock()
		part.take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) { return 100 * time.Millisecond, false, nil }
		part.mu.Unlock()
		start := time.Now()
		if err := send(); !errors.Is(err, ErrRateLimited) {
			t.Errorf("no token: %v, want ErrRateLimited", err)
		}
		if d := time.Since(start); d > time.Minute {
			t.Errorf("refused after %v, want within the longest wait a server may ask for (1m)", d)
		}
	})
}

// TestQuotaStoreNoTokenBoundStartsAfterThePause: the bound on a store that
// has no token to give (WithMaxRetryAfter) is on the store's refusals, not
// on the waits before them that the rate limiter accepted: an attempt that
// waited out the fleet's pause of nearly the longest wait, and is then told
// once that no token is left (the fleet's members all take one as the
// pause ends), gets the next one and is sent, as a plain client's request
// would be. It was refused with ErrRateLimited at that first refusal. The
// refusals themselves stay bounded after the pause.
func TestQuotaStoreNoTokenBoundStartsAfterThePause(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refused int // Take's refusals after the pause, then a token; -1 for none ever
	}{
		{"one refusal", 1},
		{"no token ever", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				part, send, hits := quotaMember(t, withRand(func(int64) int64 { return 0 }))
				pauseEnd := time.Now().Add(DefaultMaxRetryAfter - 50*time.Millisecond)
				part.Pause(pauseEnd) // another member's 429
				part.mu.Lock()
				part.take = func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
					if tc.refused < 0 || n <= 1+tc.refused { // n 1 was the first send's
						return 100 * time.Millisecond, false, nil
					}
					return 0, true, nil
				}
				part.mu.Unlock()
				err := send()
				if tc.refused < 0 {
					if !errors.Is(err, ErrRateLimited) {
						t.Errorf("no token ever: %v, want ErrRateLimited", err)
					}
					if d := time.Since(pauseEnd); d > DefaultMaxRetryAfter {
						t.Errorf("refused %v after the pause, want within the longest wait a server may ask for (%v)", d, DefaultMaxRetryAfter)
					}
					return
				}
				if err != nil || *hits != 2 {
					t.Errorf("after the pause and %d refusal: %v, %d requests sent; want the request sent (2)", tc.refused, err, *hits)
				}
			})
		})
	}
}

// quotaMember returns the partition of a QuotaStore (a memQuota) that a
// Transport with opts made for the reads of api.example.com, whose server
// announces a quota of 100 with 99 left; send, which makes a GET through
// that Transport (the first made the partition); and the count of requests
// the server got.
func quotaMember(t *testing.T, opts ...Option) (part *memPart, send func() error, hits *int) {
	t.Helper()
	hits = new(int)
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		*hits++
		h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"},
			"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}}
		return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
	})
	store := &memQuota{}
	tr := New(rt, append([]Option{WithQuotaStore(store)}, opts...)...)
	send = func() error {
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1/posts", nil))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := send(); err != nil { // makes the partition
		t.Fatal(err)
	}
	return store.part(store.names[0]), send, hits
}

// TestQuotaStoreOpenBreakerSkipsTheToken proves that an attempt whose
// host's breaker is open past the store's wait for its token (held for
// later, or none to be had yet) goes on to the breaker at once, which
// refuses it, as the wait for a local pace or a pause does (skipWait),
// instead of first waiting for a token of the fleet for nothing.
func TestQuotaStoreOpenBreakerSkipsTheToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"held for later", true},
		{"none yet", false},
	} {
		bkSynctestRun(t, tc.name, func(t *testing.T) {
			store := new(memQuota)
			tr := New(bkNet{"api.test": bkDead()}, WithQuotaStore(store), WithMaxRetries(0),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}))
			if code, _, err := bkCall(t, tr, "https://api.test/v1/posts"); code != http.StatusInternalServerError {
				t.Fatalf("first call = %d %v, want 500", code, err)
			}
			store.part("https://api.test reads").take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) {
				return 10 * time.Second, tc.ok, nil
			}
			start := time.Now()
			_, _, err := bkCall(t, tr, "https://api.test/v1/posts")
			bkWantOpen(t, err)
			if waited := time.Since(start); waited != 0 {
				t.Errorf("the call was refused after %v, want at once: the breaker is open for 30s", waited)
			}
		})
	}
}

// TestQuotaStoreNoLongerAnnounced: one response announces a quota of 10 an
// hour; half an hour later a 429 says only Retry-After, and, past
// MaxBelievedReset, a response announces only what remains. The Transport gives its store the quota with the response
// that announced it, not with the others: a quota that no response has
// announced for MaxBelievedReset is not sent to the fleet again, to pace
// it for another hour, as it paces the Transport without a store no more.
// (The stale limit and window went to the store with each response that
// announced anything, or a Retry-After: 3 Learns, not 1.)
func TestQuotaStoreNoLongerAnnounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var phase atomic.Int32
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			switch {
			case n == 0:
				w.Header().Set("X-RateLimit-Limit", "10")
				w.Header().Set("X-RateLimit-Remaining", "9")
				w.Header().Set("X-RateLimit-Reset", "3600")
			case phase.Load() == 1:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			case phase.Load() == 2:
				w.Header().Set("X-RateLimit-Remaining", "5")
			}
		}}
		m := new(memQuota)
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(m))}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("first call: %d, %v", code, err)
		}
		p := m.part(m.names[0])
		learns := func() int {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.learns
		}
		if n := learns(); n != 1 {
			t.Fatalf("%d Learns after the response that announced the quota, want 1", n)
		}
		time.Sleep(30 * time.Minute)
		phase.Store(1)
		if code, err := do(t, client, "GET", "http://api.test/x"); code != http.StatusTooManyRequests || err != nil {
			t.Fatalf("the 429: %d, %v", code, err)
		}
		time.Sleep(MaxBelievedReset)
		phase.Store(2)
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("the call announcing what remains: %d, %v", code, err)
		}
		if n := learns(); n != 1 {
			t.Errorf("%d Learns, want 1: the quota went to the store without a response announcing it", n)
		}
	})
}

// TestQuotaStoreWaitGivesBackTheStaticTurn checks that an attempt that
// took its turn of a static limit (WithRateLimit, one every 10s) and then
// was not sent, for the store held its token for later and the caller gave
// up meanwhile, or for the store's wait passes the call's deadline or is
// longer than WithMaxRetryAfter and was refused, gives its turn back: the call that follows, whose
// token the store has at once, goes at once. The turn was kept for
// nobody, and that call waited 10s.
func TestQuotaStoreWaitGivesBackTheStaticTurn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration // the store's wait for the second call's token
		want  error
		dl    bool // the second call's context has a deadline: 100ms
	}{
		{"canceled", 5 * time.Second, context.Canceled, false},
		{"past the deadline", 5 * time.Second, ErrRateLimited, true},
		{"longer than WithMaxRetryAfter", 2 * time.Minute, ErrRateLimited, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					hits.Add(1)
					return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
				})
				store := new(memQuota)
				tr := New(base, WithQuotaStore(store), WithMaxRetries(0), WithRateLimit(rate.Every(10*time.Second), 1))
				const url = "https://api.test/v1/posts"
				if err := getClosed(t, tr, url); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Second) // the static limit's next turn
				part := store.part("https://api.test reads")
				part.take = func(int, time.Time) (time.Duration, bool, <-chan struct{}) { return tc.delay, true, nil }
				ctx, cancel := context.WithCancel(context.Background())
				if tc.dl {
					ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
				} else {
					time.AfterFunc(100*time.Millisecond, cancel)
				}
				defer cancel()
				if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", url, nil)); !errors.Is(err, tc.want) {
					t.Fatalf("the second call's err = %v, want %v", err, tc.want)
				}
				part.mu.Lock()
				part.take = nil
				part.mu.Unlock()
				start := time.Now()
				if err := getClosed(t, tr, url); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("the third call went after %v, want at once: the second was never sent", d)
				}
				if n := hits.Load(); n != 2 {
					t.Errorf("the server saw %d requests, want 2", n)
				}
			})
		})
	}
}

// TestQuotaStoreHeldAttemptGivesBackItsTurn: an attempt that waited for
// its turn of the static pace, and that the QuotaStore then holds for
// later, gives that turn back and takes one again when the store lets it
// go: it is sent when the store's wait ends, not a turn of the pace
// after it, for the turn it waited for was never used.
func TestQuotaStoreHeldAttemptGivesBackItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{}
		part := &memPart{take: func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
			if n == 3 {
				return 500 * time.Millisecond, true, nil // the third call's, at its turn of the pace
			}
			return 0, true, nil
		}}
		store := &memQuota{parts: map[string]*memPart{"http://api.test reads": part}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(1, 2), WithQuotaStore(store))}
		start := time.Now()
		for range 3 {
			if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
				t.Fatal(err)
			}
		}
		var sent []time.Duration
		for _, a := range srv.seen("") {
			sent = append(sent, a.at.Sub(start))
		}
		if want := []time.Duration{0, 0, 1500 * time.Millisecond}; !slices.Equal(sent, want) {
			t.Errorf("sent at %v, want %v: the third call at its turn (1s) and the store's wait", sent, want)
		}
	})
}

// TestQuotaStoreWaitAsLongAsMaxRetryAfter: a wait for the QuotaStore's
// token is bounded by WithMaxRetryAfter as a pause is: one longer than the
// limit is refused, one as long as the limit is waited.
func TestQuotaStoreWaitAsLongAsMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{}
		part := &memPart{take: func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
			return 10 * time.Second, true, nil
		}}
		store := &memQuota{parts: map[string]*memPart{"http://api.test reads": part}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithQuotaStore(store), WithMaxRetryAfter(10*time.Second))}
		start := time.Now()
		if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
			t.Fatalf("a wait of 10s under WithMaxRetryAfter(10s): %v", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("sent after %v, want 10s", d)
		}
	})
}
