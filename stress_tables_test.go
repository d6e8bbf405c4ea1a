package resilient

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// stressBase is a base RoundTripper of virtual hosts for TestStressTables:
// each answer is drawn from a seeded source (a success, with or without a
// quota announced, a 5xx, a 429 or 503 with Retry-After, a dropped
// connection, a slow answer), after a delay that respects the attempt's
// context.
type stressBase struct {
	mu  sync.Mutex
	rnd *rand.Rand

	inFlight atomic.Int64
	sent     atomic.Int64
}

func (b *stressBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.sent.Add(1)
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	b.mu.Lock()
	r := b.rnd.IntN(100)
	delay := time.Duration(b.rnd.IntN(40)) * time.Millisecond
	remaining := b.rnd.IntN(5)
	ra := b.rnd.IntN(3)
	b.mu.Unlock()
	if r >= 90 {
		delay = 2 * time.Second // past the attempt timeout
	}
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	h := http.Header{}
	status := http.StatusOK
	switch {
	case r < 35:
	case r < 50:
		h.Set("X-RateLimit-Limit", "5")
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", "1")
	case r < 72:
		status = http.StatusInternalServerError
	case r < 78:
		status = http.StatusTooManyRequests
		h.Set("Retry-After", strconv.Itoa(ra))
	case r < 82:
		status = http.StatusServiceUnavailable
		h.Set("Retry-After", strconv.Itoa(ra))
	case r < 90:
		return nil, io.ErrUnexpectedEOF // lost after the write
	}
	return &http.Response{
		StatusCode: status,
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(`{"ok":true}`)),
		Request:    req,
	}, nil
}

// stressSpelling returns one of the ways a caller spells host i of
// TestStressTables, which are aliases of one host in every table.
func stressSpelling(r *rand.Rand, i int) string {
	name := "h" + strconv.Itoa(i) + ".test"
	switch r.IntN(4) {
	case 0:
		return strings.ToUpper(name)
	case 1:
		return name + ":443"
	case 2:
		return name + "."
	}
	return name
}

// TestStressTables drives one Transport with small tables (breakers, slots
// of WithMaxInFlight, rate-limit partitions) from many goroutines calling
// more hosts, under more spellings and credentials, than the tables hold,
// with hedging, while others call ResetHost and read HostState and
// BreakerState, in a synctest bubble. Once every call has returned, it
// checks the invariants: nothing is left in flight or waiting in any table,
// no counter is negative, each table is within its bound and holds exactly
// the keys of its lists, and every call ended with a response or an error.
func TestStressTables(t *testing.T) {
	for _, paced := range []bool{false, true} {
		for seed := range uint64(stressSeeds) {
			t.Run(fmt.Sprintf("paced=%v/seed%d", paced, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { runStressTables(t, seed, paced) })
			})
		}
	}
}

func runStressTables(t *testing.T, seed uint64, paced bool) {
	const (
		hosts   = 24
		callers = 12
		calls   = 40
	)
	base := &stressBase{rnd: rand.New(rand.NewPCG(seed, 1))}
	var changes atomic.Int64
	var tr *Transport
	var extra []Option
	if paced {
		extra = append(extra, WithRateLimit(40, 2))
	}
	tr = New(base, append(extra,
		WithBreaker(BreakerSettings{
			MinRequests:         3,
			ConsecutiveFailures: 2,
			Window:              time.Second,
			OpenTimeout:         200 * time.Millisecond,
			ProbeTimeout:        300 * time.Millisecond,
			HalfOpenRequests:    2,
		}),
		WithBreakerObserver(func(c BreakerChange) {
			changes.Add(1)
			// An observer that reads the Transport, as a dashboard does.
			tr.BreakerState(c.Key)
		}),
		WithMaxInFlight(2),
		WithHedging(Hedging{Delay: 15 * time.Millisecond, MaxHedges: 2}),
		WithAttemptTimeout(300*time.Millisecond),
		WithMaxElapsed(3*time.Second),
		WithKeyHonoringHosts("h1.test", "h2.test", "h3.test"),
		WithRetryBudget(RetryBudget{Ratio: 0.5, Burst: 3}),
	)...)
	tr.breakers.max = 6
	tr.bulkhead.max = 6
	tr.rl.maxParts = 8

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var ended, bad atomic.Int64
	for c := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(100+c)))
			for range calls {
				i := r.IntN(hosts)
				u := "https://" + stressSpelling(r, i) + "/v1/x"
				method := http.MethodGet
				var body io.Reader
				if r.IntN(3) == 0 {
					method, body = http.MethodPost, strings.NewReader(`{"a":1}`)
				}
				cctx := ctx
				var ccancel context.CancelFunc = func() {}
				if r.IntN(8) == 0 {
					cctx, ccancel = context.WithTimeout(ctx, time.Duration(r.IntN(200))*time.Millisecond)
				}
				req, _ := http.NewRequestWithContext(cctx, method, u, body)
				req.Header.Set("Authorization", "Bearer tok"+strconv.Itoa(r.IntN(6)))
				resp, err := tr.RoundTrip(req)
				switch {
				case resp != nil && err != nil, resp == nil && err == nil:
					bad.Add(1)
				case resp != nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				ccancel()
				ended.Add(1)
			}
		})
	}
	done := stressAlongside(t, tr, seed, hosts, 6)
	wg.Wait()
	done()
	checkStressEnd(t, tr, ended.Load(), bad.Load(), base.inFlight.Load(), callers*calls)
	t.Logf("seed %d: %d attempts sent, %d breaker changes", seed, base.sent.Load(), changes.Load())
}

// stressAlongside runs, beside the calls of a stress test, ResetHost of
// the hosts, and HostState (of requests under one of tokens credentials)
// and BreakerState, checking the counts HostState gives. The function it
// returns stops them, once the calls have ended, and waits for the
// bubble's goroutines to block.
func stressAlongside(t *testing.T, tr *Transport, seed uint64, hosts, tokens int) (done func()) {
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		r := rand.New(rand.NewPCG(seed, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(1+r.IntN(20)) * time.Millisecond):
			}
			tr.ResetHost(stressSpelling(r, r.IntN(hosts)))
		}
	})
	bg.Go(func() {
		r := rand.New(rand.NewPCG(seed, 3))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(1+r.IntN(10)) * time.Millisecond):
			}
			i := r.IntN(hosts)
			req, _ := http.NewRequest(http.MethodGet, "https://"+stressSpelling(r, i)+"/v1/x", nil)
			req.Header.Set("Authorization", "Bearer tok"+strconv.Itoa(r.IntN(tokens)))
			s, err := tr.HostState(req)
			if err != nil {
				t.Errorf("HostState: %v", err)
				return
			}
			if s.InFlight < 0 || s.Waiting < 0 || s.InFlight > 2 || s.Reads.InFlight < 0 || s.Writes.InFlight < 0 || s.RetryBudget < 0 {
				t.Errorf("HostState(%s) = %+v: a count out of its bounds", req.URL.Host, s)
			}
			tr.BreakerState("https://" + stressSpelling(r, i))
		}
	})
	return func() {
		close(stop)
		bg.Wait()
		synctest.Wait()
	}
}

// checkStressEnd checks a stress test's calls once they all returned:
// want of them ended, bad of them broke the RoundTrip contract, inFlight
// attempts are left in the base; then the tables (checkStressInvariants).
func checkStressEnd(t *testing.T, tr *Transport, ended, bad, inFlight int64, want int) {
	t.Helper()
	if ended != int64(want) {
		t.Errorf("%d calls ended, want %d", ended, want)
	}
	if bad != 0 {
		t.Errorf("%d calls returned both a response and an error, or neither", bad)
	}
	if inFlight != 0 {
		t.Errorf("%d attempts still in the base RoundTripper", inFlight)
	}
	checkStressInvariants(t, tr)
}

// checkStressInvariants checks the tables of tr once every call returned.
func checkStressInvariants(t *testing.T, tr *Transport) {
	t.Helper()
	// Slots of WithMaxInFlight: none held, none waited for.
	b := tr.bulkhead
	b.mu.Lock()
	keys := 0
	for s := b.lru.head; s != nil; s = s.next {
		keys += 1 + len(s.aliases)
		if v := s.state.Load(); v != 0 {
			t.Errorf("slots of %v: state %#x, want 0 (in flight %d, waiting %d)", s.node.key, v, v&slotsMask, v>>32)
		}
		if s.waiters.head != nil {
			t.Errorf("slots of %v: waiters left in the queue", s.node.key)
		}
	}
	if n := b.table.len(); n != keys || n > b.max {
		t.Errorf("bulkhead: the table holds %d keys, its list %d; want them equal and at most %d", n, keys, b.max)
	}
	b.mu.Unlock()

	// Rate-limit partitions: nothing in flight, nothing owed beyond the burst.
	rl := tr.rl
	rl.mu.Lock()
	parts := 0
	rl.each(func(p *partition) {
		parts++
		p.mu.Lock()
		if p.inflight != 0 {
			t.Errorf("partition %v: %d in flight, want 0", p.key, p.inflight)
		}
		if p.owed < 0 {
			t.Errorf("partition %v: owed %d", p.key, p.owed)
		}
		p.mu.Unlock()
		if rl.parts.load(p.key) != p {
			t.Errorf("partition %v: not in the table", p.key)
		}
	})
	if n := rl.parts.len(); n != parts || n > rl.maxParts {
		t.Errorf("rate limiter: the table holds %d keys, its list %d; want them equal and at most %d", n, parts, rl.maxParts)
	}
	rl.mu.Unlock()

	// Breakers: the table holds exactly the keys of the lists.
	s := tr.breakers
	s.mu.Lock()
	checkBreakerTable(t, s, func(e *breakerEntry) {
		if e.removed.Load() {
			t.Errorf("breakers: %v removed but listed", e.node.key)
		}
		if m := e.m.Load(); m != nil {
			m.pmu.Lock()
			if len(m.probes) > 0 && e.state.Load() != 1 {
				t.Errorf("breakers: %v holds %d probes while %v", e.node.key, len(m.probes), BreakerState(e.state.Load()))
			}
			m.pmu.Unlock()
		}
	})
	s.mu.Unlock()

	// Retry budgets: notFull counts the budgets not full.
	bs := tr.budgets
	bs.mu.Lock()
	notFull := int64(0)
	bs.m.each(func(k breakerKey, hb *hostBudget) {
		if k != hb.node.key {
			return
		}
		v := hb.tokens.Load()
		if v&^budgetDropped < 0 || v&^budgetDropped > bs.burst {
			t.Errorf("budget of %v: %d tokens out of [0, %d]", k, v&^budgetDropped, bs.burst)
		}
		if v < bs.burst {
			notFull++
		}
	})
	if bs.overflow.tokens.Load() < bs.burst {
		notFull++
	}
	if n := bs.notFull.Load(); n != notFull {
		t.Errorf("budgets: notFull = %d, want %d", n, notFull)
	}
	bs.mu.Unlock()
}

// stressSeeds is the number of seeds TestStressTables runs per setting.
const stressSeeds = 2

// TestStressBudgetTable has goroutines spend from and credit the retry
// budgets of more hosts than the table holds (some under another
// spelling), while time passes and sweeps drop budgets that calls still
// hold, in a synctest bubble; then checks that notFull counts exactly the
// budgets held that are not full, the overflow budget included, and that
// the table stays within its bound.
func TestStressBudgetTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newBudgetSet(RetryBudget{Ratio: 0.5, Burst: 2}, nil)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(7, uint64(g)))
				for n := range 3000 {
					i := r.IntN(maxBudgets + maxBudgets/2)
					host := "h" + strconv.Itoa(i) + ".test"
					if r.IntN(4) == 0 {
						host = strings.ToUpper(host) + ":443"
					}
					req := &http.Request{URL: &url.URL{Scheme: "https", Host: host}}
					b := s.get(req)
					switch r.IntN(4) {
					case 0:
						s.withdraw(b, r.IntN(2) == 0)
					case 1:
						if s.withdraw(b, false) {
							s.giveBack(b, false)
						}
					default:
						s.deposit(b)
					}
					if n%500 == 0 {
						time.Sleep(time.Duration(r.IntN(40)) * time.Second)
						s.tokensOf(req)
					}
				}
			})
		}
		wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		notFull := int64(0)
		s.m.each(func(k breakerKey, hb *hostBudget) {
			if k != hb.node.key {
				return
			}
			v := hb.tokens.Load()
			if v&budgetDropped != 0 {
				t.Errorf("budget of %v: dropped but in the table", k)
			}
			if v < 0 || v > s.burst {
				t.Errorf("budget of %v: %d tokens out of [0, %d]", k, v, s.burst)
			}
			if v < s.burst {
				notFull++
			}
		})
		if s.overflow.tokens.Load() < s.burst {
			notFull++
		}
		if n := s.notFull.Load(); n != notFull {
			t.Errorf("notFull = %d, want %d", n, notFull)
		}
		t.Logf("%d keys held, %d not full, overflow %d", s.m.len(), notFull, s.overflow.tokens.Load())
		if n := s.m.len(); n > maxBudgets {
			t.Errorf("the table holds %d keys, want at most %d", n, maxBudgets)
		}
	})
}

// wildBase is a base RoundTripper of virtual hosts for TestStressWild: as
// stressBase, plus redirects to another host, global 429s (pausing the
// host's every partition), writes answered as replays (a host learned to
// honor keys), and hosts that answer 503 in bursts (tripping breakers and
// failing their half-open probes).
type wildBase struct {
	mu    sync.Mutex
	rnd   *rand.Rand
	hosts int

	inFlight atomic.Int64
	sent     atomic.Int64
}

func (b *wildBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.sent.Add(1)
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	b.mu.Lock()
	r := b.rnd.IntN(100)
	delay := time.Duration(b.rnd.IntN(40)) * time.Millisecond
	ra := b.rnd.IntN(3)
	to := b.rnd.IntN(b.hosts)
	b.mu.Unlock()
	if strings.HasPrefix(strings.ToLower(req.URL.Host), "h0.") || strings.HasPrefix(strings.ToLower(req.URL.Host), "h1.") {
		r = 60 // always failing: breakers stay open, probes fail
	}
	if r >= 95 {
		delay = 2 * time.Second // past the attempt timeout
	}
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	h := http.Header{}
	status := http.StatusOK
	switch {
	case r < 25:
	case r < 35:
		h.Set("X-RateLimit-Limit", "5")
		h.Set("X-RateLimit-Remaining", strconv.Itoa(ra))
		h.Set("X-RateLimit-Reset", "1")
	case r < 45:
		status = http.StatusTemporaryRedirect
		h.Set("Location", "https://h"+strconv.Itoa(to)+".test/v1/y")
	case r < 52:
		h.Set("Idempotent-Replayed", "true")
	case r < 70:
		status = http.StatusServiceUnavailable
	case r < 76:
		status = http.StatusTooManyRequests
		h.Set("Retry-After", strconv.Itoa(ra))
		h.Set("X-RateLimit-Global", "true")
	case r < 82:
		status = http.StatusTooManyRequests
		h.Set("Retry-After", strconv.Itoa(ra))
	case r < 95:
		return nil, io.ErrUnexpectedEOF
	}
	return &http.Response{
		StatusCode: status,
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(`{"ok":true}`)),
		Request:    req,
	}, nil
}

// TestStressWild is TestStressTables with more callers and hosts, callers
// that go through an http.Client (following redirects) and cancel
// mid-wait, and a base that pauses hosts globally and teaches them to
// honor keys, with the tables' bounds, HalfOpenRequests and MaxHedges
// drawn from the seed. Each RoundTrip must end within MaxElapsed, and at
// once when its context is canceled; then it checks the invariants of
// TestStressTables, and the count of the host pauses.
func TestStressWild(t *testing.T) {
	for seed := range uint64(wildSeeds) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runStressWild(t, seed) })
		})
	}
}

// wildSeeds is the number of seeds TestStressWild runs: four draw every
// setting of HalfOpenRequests and MaxHedges.
const wildSeeds = 4

func runStressWild(t *testing.T, seed uint64) {
	const (
		hosts   = 40
		callers = 64
		calls   = 12
	)
	base := &wildBase{rnd: rand.New(rand.NewPCG(seed, 1)), hosts: hosts}
	var tr *Transport
	tr = New(base,
		WithRateLimit(40, 2),
		WithBreaker(BreakerSettings{
			MinRequests:         2,
			ConsecutiveFailures: 2,
			Window:              time.Second,
			OpenTimeout:         50 * time.Millisecond,
			ProbeTimeout:        100 * time.Millisecond,
			HalfOpenRequests:    1 + int(seed%2),
		}),
		WithBreakerObserver(func(c BreakerChange) { tr.BreakerState(c.Key) }),
		WithMaxInFlight(2),
		WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1 + int(seed/2%2)}),
		WithAttemptTimeout(200*time.Millisecond),
		WithMaxElapsed(2*time.Second),
		WithRetryBudget(RetryBudget{Ratio: 0.5, Burst: 3}),
	)
	caps := rand.New(rand.NewPCG(seed, 9))
	tr.breakers.max = 2 + caps.IntN(4)
	tr.bulkhead.max = 2 + caps.IntN(4)
	tr.rl.maxParts = 2 + caps.IntN(5)
	client := &http.Client{Transport: tr}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var ended, bad atomic.Int64
	for c := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(100+c)))
			for range calls {
				i := r.IntN(hosts)
				u := "https://" + stressSpelling(r, i) + "/v1/x"
				method := http.MethodGet
				var body io.Reader
				if r.IntN(3) == 0 {
					method, body = http.MethodPost, strings.NewReader(`{"a":1}`)
				}
				cctx, ccancel := context.WithCancel(ctx)
				var canceledAt atomic.Pointer[time.Time]
				if r.IntN(4) == 0 {
					d := time.Duration(r.IntN(300)) * time.Millisecond
					time.AfterFunc(d, func() {
						now := time.Now()
						canceledAt.Store(&now)
						ccancel()
					})
				}
				req, _ := http.NewRequestWithContext(cctx, method, u, body)
				req.Header.Set("Authorization", "Bearer tok"+strconv.Itoa(r.IntN(3)))
				var resp *http.Response
				var err error
				start := time.Now()
				direct := r.IntN(2) != 0
				if !direct {
					resp, err = client.Do(req)
					if err != nil && resp != nil {
						bad.Add(1)
					}
				} else {
					resp, err = tr.RoundTrip(req)
					if (resp != nil) == (err != nil) {
						bad.Add(1)
					}
				}
				if direct {
					el := time.Since(start)
					if el > 2*time.Second {
						t.Errorf("%s %s: RoundTrip took %v, past MaxElapsed (err %v)", method, u, el, err)
					}
					if at := canceledAt.Load(); at != nil {
						if late := time.Since(*at); late > 0 {
							t.Errorf("%s %s: RoundTrip returned %v after its context was canceled (err %v)", method, u, late, err)
						}
					}
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				ccancel()
				ended.Add(1)
			}
		})
	}
	done := stressAlongside(t, tr, seed, hosts, 3)
	wg.Wait()
	done()
	checkStressEnd(t, tr, ended.Load(), bad.Load(), base.inFlight.Load(), callers*calls)
	pauses := 0
	tr.rl.hostPauses.m.Range(func(any, any) bool { pauses++; return true })
	if n := int(tr.rl.hostPauses.n.Load()); n != pauses {
		t.Errorf("host pauses: n = %d, the map holds %d", n, pauses)
	}
	t.Logf("seed %d: %d attempts sent, %d host pauses, %d hosts learned", seed, base.sent.Load(), pauses, tr.keys.learned.len())
}
