package resilient_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

var (
	boundsSeed    = flag.Uint64("bounds.seed", 0, "run only the TestBoundsProperty case of this seed (it is logged on a failure), or -bounds.cases cases from it")
	boundsCases   = flag.Int("bounds.cases", 300, "number of cases of TestBoundsProperty")
	boundsVerbose = flag.Bool("bounds.v", false, "log every call of TestBoundsProperty")
)

// boundsSlack is how far past the earliest of its deadlines (its
// context's deadline, its cancel, the end of its WithMaxElapsed budget) a
// call may return, in the bubble's fake time: none. Every wait of the
// Transport is cut at the deadline or not started when it would pass it,
// every attempt runs under that deadline, and what the Transport reads of
// a response itself (an envelope, a drain) is bounded by the attempt's
// deadline too; in a bubble only waits take time.
const boundsSlack = 0

// TestBoundsProperty checks DESIGN.md's bounds rule across random
// combinations of the options that bound a call (a QuotaStore whose
// backend is slow included), of callers (deadlines, cancels, GET and POST
// with and without a replayable body or a key, a GetBody of their own that
// is slow or fails, Expect: 100-continue) and of a hostile server (429s
// with every form of Retry-After, 503s, spent quotas whose reset is far,
// answers that never come, bodies that stall or trickle, redirects,
// connections reset), each case in a synctest bubble. The time the
// caller's own GetBody takes is the caller's. For every call: it
// returns; no later than its earliest deadline (boundsSlack), or, with
// none, than the sum of the documented waits; with no more attempts than
// its options allow, hedged copies as documented; and no write the host
// is not known to deduplicate sent again after an answer that may mean it
// was processed. After the calls: no slot held or waited for, and, once
// every pause and open breaker has expired, a fresh call to the healthy
// host goes straight through. -bounds.seed replays one case; the seed and
// the case are logged on a failure.
func TestBoundsProperty(t *testing.T) {
	first, n := uint64(20261201), *boundsCases
	if *boundsSeed != 0 {
		// One case, or -bounds.cases of them from it.
		first, n = *boundsSeed, 1
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "bounds.cases" {
				n = *boundsCases
			}
		})
	} else if testing.Short() {
		n = 50
	}
	for i := range n {
		c := drawBoundsCase(first + uint64(i))
		synctest.Test(t, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("failed case: %s", c)
				}
			})
			runBoundsCase(t, c)
		})
		if t.Failed() {
			return
		}
	}
}

// boundsResult is what a call did.
type boundsResult struct {
	status  int
	err     error
	elapsed time.Duration
}

func runBoundsCase(t *testing.T, c *boundsCase) {
	srv := &boundsServer{behaviors: c.Behaviors, closing: make(chan struct{}), byCall: map[string][]boundsBehavior{}}
	ps := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(srv))
	defer ps.Close()
	defer srv.stop() // before Close, which waits for the handlers
	// The base counts what net/http resends by itself (see chaos_test.go).
	var resentMu sync.Mutex
	resent := map[string]int{}
	base := chaosRoundTripFunc(func(req *http.Request) (*http.Response, error) {
		var wrote atomic.Int32
		trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Add(1) }}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		defer func() {
			if n := wrote.Load(); n > 1 {
				resentMu.Lock()
				resent[req.Header.Get("X-Bounds-Call")] += int(n) - 1
				resentMu.Unlock()
			}
		}()
		return ps.Transport().RoundTrip(req)
	})
	type attemptsKey struct{}
	observe := resilient.WithContextObserver(func(ctx context.Context, a resilient.Attempt) {
		if p, ok := ctx.Value(attemptsKey{}).(*[]resilient.Attempt); ok {
			*p = append(*p, a) // on the call's goroutine
		}
	})
	if c.ExpectWait > 0 {
		ps.Transport().ExpectContinueTimeout = c.ExpectWait
	}
	opts := append(c.transportOptions(), observe)
	store := newBoundsStore(c)
	if store != nil {
		opts = append(opts, resilient.WithQuotaStore(store))
	}
	tr := resilient.New(base, opts...)
	totalHedges := 0
	defer tr.CloseIdleConnections()
	url := ps.URL + "/v1/posts"

	// Without any bound, a server that never answers keeps a call as it
	// keeps a plain client's: where a call has none, the server then
	// only answers.
	for _, call := range c.Calls {
		knobs := c.Knobs
		if call.Opts != nil {
			knobs = knobs.over(*call.Opts)
		}
		_, _, elapsed, attemptTimeout, _, _ := knobs.effective()
		if elapsed == 0 && call.Deadline == 0 && call.CancelAfter == 0 && attemptTimeout == 0 {
			for j, b := range srv.behaviors {
				if b.hangs() {
					srv.behaviors[j] = bh503
				}
			}
		}
	}
	var hedgesMu sync.Mutex
	// settle waits until every goroutine of the bubble is blocked; one
	// call at a time (synctest.Wait is not to be called concurrently),
	// under a channel, on which a goroutine blocks durably.
	waitTurn := make(chan struct{}, 1)
	settle := func() {
		waitTurn <- struct{}{}
		synctest.Wait()
		<-waitTurn
	}
	runCall := func(i int, call boundsCall) {
		id := strconv.Itoa(i)
		knobs := c.Knobs
		if call.Opts != nil {
			knobs = knobs.over(*call.Opts)
		}
		retries, boMax, elapsed, attemptTimeout, maxRetryAfter, maxHedges := knobs.effective()

		start := time.Now()
		ctx := context.Background()
		var deadline time.Time // the earliest of the call's bounds; zero for none
		earliest := func(d time.Time) {
			if deadline.IsZero() || d.Before(deadline) {
				deadline = d
			}
		}
		if elapsed > 0 {
			earliest(start.Add(elapsed))
		}
		var cancels []context.CancelFunc
		if call.Deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, call.Deadline)
			cancels = append(cancels, cancel)
			earliest(start.Add(call.Deadline))
		}
		if call.CancelAfter > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			cancels = append(cancels, cancel)
			tm := time.AfterFunc(call.CancelAfter, cancel)
			cancels = append(cancels, func() { tm.Stop() })
			earliest(start.Add(call.CancelAfter))
		}
		if call.Opts != nil {
			ctx = resilient.WithCallOptions(ctx, call.Opts.options()...)
		}
		var rep resilient.Report
		ctx = resilient.WithReport(ctx, &rep)
		var seenAttempts []resilient.Attempt
		ctx = context.WithValue(ctx, attemptsKey{}, &seenAttempts)
		// The copies that lost the previous call's race end, and their
		// outcomes are counted, once their base returns: after that call.
		probe, _ := http.NewRequest(call.Method, url, nil)
		var before resilient.HostState
		if !c.Concurrent {
			settle()
			before, _ = tr.HostState(probe)
		}

		var body io.Reader
		switch call.Body {
		case "getbody":
			body = strings.NewReader(`{"n":1}`)
		case "plain":
			body = io.MultiReader(strings.NewReader(`{"n":1}`)) // no GetBody
		case "slowgetbody", "failgetbody":
			body = strings.NewReader(`{"n":1}`)
		}
		req, err := http.NewRequestWithContext(ctx, call.Method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		// The time the caller's own GetBody took: the caller's, which
		// the Transport cannot cut (it runs on the call's goroutine, or
		// a hedged copy's).
		var inGetBody atomic.Int64
		switch call.Body {
		case "slowgetbody":
			req.GetBody = func() (io.ReadCloser, error) {
				time.Sleep(call.GetBodyWait)
				inGetBody.Add(int64(call.GetBodyWait))
				return io.NopCloser(strings.NewReader(`{"n":1}`)), nil
			}
		case "failgetbody":
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("the caller's GetBody failed") }
		}
		if call.Expect {
			req.Header.Set("Expect", "100-continue")
		}
		req.Header.Set("X-Bounds-Call", id)
		if call.CallerKey {
			req.Header.Set("Idempotency-Key", "caller-"+id)
		}

		done := make(chan boundsResult, 1)
		go func() {
			resp, err := tr.RoundTrip(req)
			res := boundsResult{err: err, elapsed: time.Since(start)}
			if resp != nil {
				res.status = resp.StatusCode
				// The body is the caller's: read it, as long as the
				// caller would (a stalled one, until it gives up).
				stop := time.AfterFunc(time.Hour, func() { resp.Body.Close() })
				io.Copy(io.Discard, resp.Body)
				stop.Stop()
				resp.Body.Close()
			}
			done <- res
		}()

		// The documented worst case without a deadline: every attempt
		// (and the wait for its slot) cut by its attempt timeout (or, with
		// none, the server's slowest answers), what is read of it bounded
		// by 2s (an envelope's peek, a drain), and every retry's wait at
		// its cap:
		// the backoff's, or a server's wait within WithMaxRetryAfter
		// plus its spread (10%, at most 1s), for the retry loop, and
		// such a wait (a pause, a spent quota) at the rate limiter
		// before every attempt.
		attempts := retries + 1
		if retries == math.MaxInt {
			// No limit but the budget (and the server answers at last,
			// once its faults run out): bounded by the count of its
			// faults, as a plain loop would be.
			attempts, retries = len(c.Behaviors)+1+len(c.Calls), len(c.Behaviors)+len(c.Calls)
		}
		answer := 2 * attemptTimeout // the wait for a slot, and the attempt
		if attemptTimeout == 0 {
			// The slowest answer the server gives, to this call and to
			// those it may wait behind for a slot.
			answer = time.Duration(len(c.Calls)) * bhSlowest
		}
		worst := time.Duration(attempts)*(answer+2*2*time.Second+maxRetryAfter+time.Second) +
			time.Duration(retries)*max(boMax, maxRetryAfter+time.Second)
		if c.RateLimit > 0 {
			// The caller's own pace, for every attempt and copy of the
			// case's calls.
			worst += time.Duration(attempts) * time.Duration(float64(time.Second)/float64(c.RateLimit)*float64(len(c.Calls)*(1+maxHedges)*attempts+c.RateBurst))
		}
		bound := start.Add(worst)
		if !deadline.IsZero() {
			bound = deadline.Add(boundsSlack)
		}
		var res boundsResult
		select {
		case res = <-done:
		case <-time.After(time.Until(bound) + 24*time.Hour):
			t.Errorf("call %d (%s): still running 24h after its bound %v", i, call, bound.Sub(start))
			for _, cancel := range cancels {
				cancel()
			}
			srv.stop()
			res = <-done
		}
		for _, cancel := range cancels {
			cancel()
		}
		end := start.Add(res.elapsed)
		if end.After(bound.Add(time.Duration(inGetBody.Load()))) {
			t.Errorf("call %d (%s): returned after %v (%d, %v), past its bound of %v; report %+v",
				i, call, res.elapsed, res.status, res.err, bound.Sub(start), rep)
		}

		// Attempts: at most 1 + retries, hedged copies apart.
		if got := rep.Attempts - rep.Hedges; got > attempts {
			t.Errorf("call %d (%s): %d attempts, want at most %d; report %+v", i, call, got, attempts, rep)
		}
		if rep.Hedges > (rep.Attempts-rep.Hedges)*maxHedges {
			t.Errorf("call %d (%s): %d hedges for %d attempts, MaxHedges %d", i, call, rep.Hedges, rep.Attempts-rep.Hedges, maxHedges)
		}
		// A hedged copy that lost ends after the call: what it did
		// (net/http's resend of it included) is counted once it has.
		settle()
		srv.mu.Lock()
		met := append([]boundsBehavior(nil), srv.byCall[id]...)
		srv.mu.Unlock()
		resentMu.Lock()
		seen := len(met) - resent[id]
		resentMu.Unlock()
		if seen > rep.Attempts {
			t.Errorf("call %d (%s): the server read %d requests (%v), the Report says %d attempts", i, call, seen, met, rep.Attempts)
		}
		// The write rule: a write without the caller's key, to a host
		// not known to deduplicate, is not sent again once it may have
		// been processed.
		if call.Method == http.MethodPost && !call.CallerKey {
			for j, b := range met[:max(len(met)-1, 0)] {
				if b.ambiguous() {
					t.Errorf("call %d (%s): a write sent again after %v (request %d of %v)", i, call, b, j, met)
					break
				}
			}
		}
		if *boundsVerbose {
			t.Logf("case %d call %d (%s): %d %v after %v; met %v; report %+v", c.Seed, i, call, res.status, res.err, res.elapsed, met, rep)
		}
		hedgesMu.Lock()
		totalHedges += rep.Hedges
		hedgesMu.Unlock()
		if rep.Duration != res.elapsed {
			t.Errorf("call %d (%s): Report.Duration %v, took %v", i, call, rep.Duration, res.elapsed)
		}
		// Each attempt and each wait within its documented bound, and no
		// time spent outside them.
		spread := min(maxRetryAfter/10, time.Second)
		var accounted time.Duration
		var local, uncertain, hedges int
		for _, a := range seenAttempts {
			accounted += a.Duration + a.Delay
			hedges += a.Hedges
			switch a.Outcome {
			case resilient.OutcomeCircuitOpen, resilient.OutcomeRateLimited, resilient.OutcomeTooManyInFlight:
				local++
			}
			if a.Outcome == resilient.OutcomeCanceled || a.StatusCode == 0 {
				uncertain++
			}
			// (When a hedged copy answered, the Attempt's waits are the
			// attempt's own, all before it was sent and its copies'
			// delay began, and the copy's.)
			if attemptTimeout > 0 {
				if a.SlotWait > attemptTimeout {
					t.Errorf("call %d (%s): attempt %d waited %v for a slot, past its attempt timeout %v", i, call, a.Number, a.SlotWait, attemptTimeout)
				}
				// Each hedged copy runs under a deadline of its own, from
				// when it is sent, one Delay after the one before it
				// (DESIGN.md: per attempt and per hedge copy); a copy not
				// sent (no token of the pace free) is not counted, but
				// the next is sent a Delay later all the same.
				hedgeDelay := attemptTimeout // adaptive: the host's latency, within it
				if knobs.Hedging != nil && knobs.Hedging.Delay > 0 {
					hedgeDelay = knobs.Hedging.Delay
				}
				// (The caller's own GetBody, which net/http calls too
				// to resend a request on a connection found dead, is
				// the caller's time.)
				if d := a.Duration - a.LocalWait - a.SlotWait - time.Duration(min(a.Hedges, 1)*maxHedges)*hedgeDelay - time.Duration(inGetBody.Load()); d > attemptTimeout {
					t.Errorf("call %d (%s): attempt %d ran %v (%v in all, %v and %v waiting), past its attempt timeout %v; attempts %+v",
						i, call, a.Number, d, a.Duration, a.LocalWait, a.SlotWait, attemptTimeout, seenAttempts)
				}
			}
			if a.Delay > max(boMax, maxRetryAfter+spread) {
				t.Errorf("call %d (%s): attempt %d waits %v before the next, past both the backoff's cap %v and WithMaxRetryAfter %v (+%v)",
					i, call, a.Number, a.Delay, boMax, maxRetryAfter, spread)
			}
			// WithMaxRetryAfter in all, the reset's spread, and the tenth
			// of it an attempt past that bound may wait at a spent
			// quota's reset for the scout's answer (the documented
			// exception; ratelimit.go's scoutGraceShare).
			// A store that grants no token is bounded with them, in
			// all (QuotaPartition.Take).
			localMax := maxRetryAfter + spread + maxRetryAfter/10
			if c.RateLimit > 0 {
				// The caller's own pace, which every attempt and copy of
				// the case's calls may queue for.
				localMax += time.Duration(float64(time.Second) / float64(c.RateLimit) * float64(len(c.Calls)*(1+maxHedges)*attempts+c.RateBurst))
			}
			if a.LocalWait > localMax {
				t.Errorf("call %d (%s): attempt %d waited %v for the rate limiter, past %v", i, call, a.Number, a.LocalWait, localMax)
			}
		}
		// A wait that would pass the context's deadline or the call's
		// budget is not started: every wait chosen ends before them.
		hard := time.Duration(0) // from the start; 0 for none
		if elapsed > 0 {
			hard = elapsed
		}
		if call.Deadline > 0 && (hard == 0 || call.Deadline < hard) {
			hard = call.Deadline
		}
		var offset time.Duration
		for _, a := range seenAttempts {
			offset += a.Duration
			if hard > 0 && a.Retry && a.Delay > 0 && offset+a.Delay >= hard {
				t.Errorf("call %d (%s): attempt %d, ended at %v, chose a wait of %v, which passes the call's deadline %v; attempts %+v",
					i, call, a.Number, offset, a.Delay, hard, seenAttempts)
			}
			offset += a.Delay
		}
		if res.elapsed > accounted+time.Duration(inGetBody.Load()) && !errors.Is(res.err, context.Canceled) && !errors.Is(res.err, context.DeadlineExceeded) {
			t.Errorf("call %d (%s): took %v, its attempts and waits %v: time spent outside them; attempts %+v", i, call, res.elapsed, accounted, seenAttempts)
		}
		if rep.Attempts != len(seenAttempts)+hedges || rep.Hedges != hedges {
			t.Errorf("call %d (%s): Report %+v, observer %d attempts, %d hedges", i, call, rep, len(seenAttempts), hedges)
		}
		wire := rep.Attempts - local
		if seen > wire || seen < wire-hedges-uncertain {
			t.Errorf("call %d (%s): the server read %d requests (%v); %d attempts (%d hedges), %d refused locally, %d uncertain",
				i, call, seen, met, rep.Attempts, hedges, local, uncertain)
		}
		if call.Method == http.MethodPost && !call.CallerKey && rep.Hedges > 0 {
			t.Errorf("call %d (%s): a write without a key to a host not known to deduplicate hedged %d times", i, call, rep.Hedges)
		}
		// A call refused locally, at once, costs nothing: the host's
		// budget is no lower, its breaker as it was.
		if !c.Concurrent && len(seenAttempts) == 1 && local == 1 && res.elapsed == 0 {
			after, _ := tr.HostState(probe)
			// (A budget idle for ten minutes refills when next used, a
			// refused attempt's lookup included: it may rise.)
			if after.RetryBudget < before.RetryBudget || after.Breaker != before.Breaker {
				t.Errorf("call %d (%s): refused locally (%v), yet the host's budget went %v -> %v, its breaker %+v -> %+v",
					i, call, seenAttempts[0].Outcome, before.RetryBudget, after.RetryBudget, before.Breaker, after.Breaker)
			}
		}
		if res.err != nil && !strings.HasPrefix(res.err.Error(), "resilient: ") {
			t.Errorf("call %d: error %q without the resilient: prefix", i, res.err)
		}
	}
	if c.Concurrent {
		// The calls start at their offsets, each on its goroutine.
		var wg sync.WaitGroup
		for i, call := range c.Calls {
			wg.Go(func() {
				time.Sleep(call.StartAt)
				runCall(i, call)
			})
		}
		wg.Wait()
	} else {
		for i, call := range c.Calls {
			runCall(i, call)
		}
	}

	// Hedges of a host: at most one in twenty of its calls, plus ten.
	if max := 10 + (len(c.Calls)+19)/20; totalHedges > max {
		t.Errorf("%d hedges for %d calls, want at most %d", totalHedges, len(c.Calls), max)
	}
	// Nothing held: no slot in flight or waited for.
	probe, _ := http.NewRequest(http.MethodGet, url, nil)
	if c.MaxInFlight > 0 {
		// A hedged copy that lost gives its slot back once its base
		// returns, which may be just after the call returned.
		synctest.Wait()
		hs, err := tr.HostState(probe)
		if err != nil || hs.InFlight != 0 || hs.Waiting != 0 {
			t.Errorf("after the calls, once every goroutine is blocked: HostState %+v, %v; want nothing in flight or waiting", hs, err)
		}
	}
	// Once every pause, spent quota and open breaker has expired, a fresh
	// call to the healthy host goes straight through: one attempt, no wait.
	srv.healthy.Store(true)
	if store != nil {
		store.healthy.Store(true)
	}
	time.Sleep(resilient.MaxBelievedReset + time.Minute)
	var rep resilient.Report
	req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &rep), http.MethodGet, url, nil)
	req.Header.Set("X-Bounds-Call", "fresh")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Errorf("fresh call after the case: %v; report %+v", err, rep)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || rep.Attempts != 1 || time.Since(start) != 0 {
		t.Errorf("fresh call after the case: %d after %d attempts and %v; want 200 at once; report %+v",
			resp.StatusCode, rep.Attempts, time.Since(start), rep)
	}
}
