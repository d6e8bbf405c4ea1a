package resilient_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
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
	chaosLong = flag.Bool("chaos.long", false, "run TestChaos with many more calls")
	chaosSeed = flag.Uint64("chaos.seed", 0, "seed of TestChaos (0: its fixed default)")
)

// Settings of the Transport of TestChaos: low thresholds, so that the
// breakers trip, the budget runs dry and the hosts fill up.
const (
	chaosMaxInFlight    = 3
	chaosCallers        = 32
	chaosMaxElapsed     = 20 * time.Second
	chaosAttemptTimeout = 2 * time.Second
	// chaosSlack is how far past its deadline (its context's, its
	// WithMaxElapsed) a call may return, in the bubble's fake time: none.
	// Every wait of the Transport is cut at the deadline (or not started
	// when it would pass it), and in a bubble only waits take time.
	chaosSlack = 0
)

var chaosBudget = resilient.RetryBudget{Ratio: 0.2, Burst: 5, ThrottledCost: 0.1}

// chaosHost is one fault server of TestChaos and what the test counts of
// it.
type chaosHost struct {
	srv      *resilienttest.Server
	url      string
	honors   bool // the server deduplicates writes by key
	inFlight atomic.Int32
	maxSeen  atomic.Int32

	mu     sync.Mutex
	byCall map[string]int // requests the server read, by X-Chaos-Call
	resent map[string]int // requests net/http resent by itself, by X-Chaos-Call
}

// chaosCall is what the test records of one call.
type chaosCall struct {
	id       string
	host     *chaosHost
	report   resilient.Report
	attempts []resilient.Attempt // from the context observer
	budget   time.Duration       // the earliest of its deadlines
	elapsed  time.Duration
	err      error
	status   int
}

// TestChaos drives one Transport with every feature on from 32 goroutines
// against three fault servers (HTTP/1 with a key-honoring API, HTTP/1 with
// one that ignores keys, HTTP/2 over TLS), in a synctest bubble so that the
// Transport's waits cost nothing, and checks the invariants the package
// documents: every call returns, with a documented error; no write is
// stored twice by the host that ignores keys; no more attempts in flight
// per host than WithMaxInFlight; nothing left in flight or waiting; each
// call's Report agrees with the server's count of its requests and with
// the observer; the retry budget bounds each host's retries; no call
// outlives its deadline. -chaos.seed picks the seed (it is logged on a
// failure), -chaos.long runs many more calls.
func TestChaos(t *testing.T) {
	seed := *chaosSeed
	if seed == 0 {
		seed = 20261201
	}
	calls := 12
	if *chaosLong {
		calls = 200
	} else if testing.Short() {
		calls = 4
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TestChaos: -chaos.seed=%d (%d calls per caller)", seed, calls)
		}
	})
	synctest.Test(t, func(t *testing.T) { runChaos(t, seed, calls) })
}

func runChaos(t *testing.T, seed uint64, callsPer int) {
	faults := func(n int64, retryAfter time.Duration) resilienttest.Faults {
		return resilienttest.Faults{
			Seed:             int64(seed) + n,
			ServerError:      0.10,
			RateLimit:        0.06,
			DropBefore:       0.04,
			DropAfter:        0.04,
			Slow:             0.05,
			Malformed:        0.02,
			HTML:             0.02,
			ServerErrorAfter: 0.03,
			CutBody:          0.04,
			SlowDelay:        3 * time.Second, // past the attempt timeout
			RetryAfter:       retryAfter,
		}
	}
	hosts := []*chaosHost{{honors: true}, {}, {honors: true}}
	exchanges := func(h *chaosHost) resilienttest.Option {
		h.byCall, h.resent = map[string]int{}, map[string]int{}
		return resilienttest.WithExchanges(func(e resilienttest.Exchange) {
			if id := e.Header.Get("X-Chaos-Call"); id != "" {
				h.mu.Lock()
				h.byCall[id]++
				h.mu.Unlock()
			}
		})
	}
	hosts[0].srv = resilienttest.NewPipeServer(resilienttest.Aidelly, exchanges(hosts[0]),
		resilienttest.WithFaults(faults(0, 2*time.Second)),
		resilienttest.WithLatency(20*time.Millisecond),
		resilienttest.WithQuota(resilienttest.Quota{Limit: 40, Window: time.Second, PerClass: true}))
	hosts[1].srv = resilienttest.NewPipeServer(resilienttest.Altyaa, exchanges(hosts[1]),
		resilienttest.WithIgnoreIdempotencyKeys(true),
		resilienttest.WithFaults(faults(1, -1)), // 429s without Retry-After
		resilienttest.WithLatency(10*time.Millisecond),
		resilienttest.WithQuota(resilienttest.Quota{Limit: 30, Window: time.Second, ResetFormat: resilienttest.IETF}))
	hosts[2].srv = resilienttest.NewPipeServer(resilienttest.Postato, exchanges(hosts[2]), resilienttest.WithTLS(),
		resilienttest.WithFaults(faults(2, 0)), // Retry-After: 0
		resilienttest.WithLatency(30*time.Millisecond),
		resilienttest.WithQuota(resilienttest.Quota{Limit: 50, Window: 2 * time.Second, ResetFormat: resilienttest.XRateLimitDash}))
	byHost := map[string]*chaosHost{}
	for _, h := range hosts {
		h.url = h.srv.URL
		byHost[strings.TrimPrefix(strings.TrimPrefix(h.url, "https://"), "http://")] = h
	}
	defer func() {
		for _, h := range hosts {
			h.srv.Close()
		}
	}()

	// The base counts the attempts in flight per host: those between the
	// call of the server's transport and its return, a subset of the
	// attempts holding a slot of WithMaxInFlight (a server may still be
	// busy with a request its client gave up, so the server's own count
	// could pass the limit without a fault of the Transport).
	base := chaosRoundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := byHost[req.URL.Host]
		if h == nil {
			return nil, fmt.Errorf("chaos: unknown host %q", req.URL.Host)
		}
		n := h.inFlight.Add(1)
		for m := h.maxSeen.Load(); n > m && !h.maxSeen.CompareAndSwap(m, n); m = h.maxSeen.Load() {
		}
		defer h.inFlight.Add(-1)
		// net/http resends by itself, once, a request that is replayable
		// (a GET, or a write whose header net/http reads as a key) when a
		// connection it reused dies before the answer: the server reads
		// two requests for one attempt. Count the requests it wrote.
		var wrote atomic.Int32
		trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Add(1) }}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		defer func() {
			if n := wrote.Load(); n > 1 {
				h.mu.Lock()
				h.resent[req.Header.Get("X-Chaos-Call")] += int(n) - 1
				h.mu.Unlock()
			}
		}()
		return h.srv.Transport().RoundTrip(req)
	})

	var (
		mu       sync.Mutex
		all      []resilient.Attempt // from WithObserver
		changes  = map[string][]resilient.BreakerChange{}
		perCall  = map[string]*chaosCall{}
		ctxKeyID = new(int)
	)
	tr := resilient.New(base,
		resilient.WithRetryBudget(chaosBudget),
		resilient.WithBreaker(resilient.BreakerSettings{
			MinRequests: 6, FailureRatio: 0.5, ConsecutiveFailures: 5,
			Window: 5 * time.Second, OpenTimeout: time.Second,
		}),
		resilient.WithMaxInFlight(chaosMaxInFlight),
		resilient.WithHedging(resilient.Hedging{Delay: 150 * time.Millisecond, MaxHedges: 2}),
		resilient.WithMaxElapsed(chaosMaxElapsed),
		resilient.WithAttemptTimeout(chaosAttemptTimeout),
		resilient.WithBackoff(100*time.Millisecond, 2*time.Second),
		resilient.WithKeyHonoringHosts(strings.TrimPrefix(hosts[0].url, "http://")),
		resilient.WithLogger(slog.New(slog.DiscardHandler)),
		resilient.WithObserver(func(a resilient.Attempt) {
			mu.Lock()
			all = append(all, a)
			mu.Unlock()
		}),
		resilient.WithContextObserver(func(ctx context.Context, a resilient.Attempt) {
			c, _ := ctx.Value(ctxKeyID).(*chaosCall)
			if c == nil {
				t.Errorf("an attempt without its call's context: %+v", a)
				return
			}
			c.attempts = append(c.attempts, a) // on the call's goroutine
		}),
		resilient.WithBreakerObserver(func(ch resilient.BreakerChange) {
			mu.Lock()
			changes[ch.Key] = append(changes[ch.Key], ch)
			mu.Unlock()
		}),
	)
	defer tr.CloseIdleConnections()

	// During the run: a side goroutine resets hosts and reads their state.
	done := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		r := rand.New(rand.NewPCG(seed, 99))
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(200+r.IntN(800)) * time.Millisecond):
			}
			h := hosts[r.IntN(len(hosts))]
			if r.IntN(4) == 0 {
				tr.ResetHost(h.url)
			}
			req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/posts", nil)
			hs, err := tr.HostState(req)
			if err != nil {
				t.Errorf("HostState(%s) = %v", h.url, err)
				continue
			}
			if hs.InFlight < 0 || hs.InFlight > chaosMaxInFlight || hs.Waiting < 0 {
				t.Errorf("during the run, HostState(%s): %d in flight, %d waiting; want 0 to %d in flight", h.url, hs.InFlight, hs.Waiting, chaosMaxInFlight)
			}
		}
	}()

	var wg sync.WaitGroup
	for g := range chaosCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := range callsPer {
				c := &chaosCall{id: fmt.Sprintf("%d-%d", g, i), budget: chaosMaxElapsed}
				c.host = hosts[r.IntN(len(hosts))]
				chaosOne(t, tr, r, c, ctxKeyID)
				mu.Lock()
				perCall[c.id] = c
				mu.Unlock()
				time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(done)
	side.Wait()
	synctest.Wait()

	// After the run.
	if len(perCall) != chaosCallers*callsPer {
		t.Fatalf("%d calls returned, want %d", len(perCall), chaosCallers*callsPer)
	}
	for _, h := range hosts {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/posts", nil)
		hs, err := tr.HostState(req)
		if err != nil {
			t.Fatalf("HostState(%s) = %v", h.url, err)
		}
		if hs.InFlight != 0 || hs.Waiting != 0 {
			t.Errorf("after the run, HostState(%s): %d in flight, %d waiting; want 0, 0", h.url, hs.InFlight, hs.Waiting)
		}
		if bs := tr.BreakerState(h.url); hs.Breaker != bs {
			t.Errorf("HostState(%s).Breaker = %v, BreakerState = %v", h.url, hs.Breaker, bs)
		}
		if m := h.maxSeen.Load(); m > chaosMaxInFlight {
			t.Errorf("%s: %d attempts in flight at once, want at most %d", h.url, m, chaosMaxInFlight)
		}
		if st := h.srv.Stats(); !h.honors && st.Duplicates != 0 {
			t.Errorf("%s, which ignores keys: %d writes stored twice, want 0 (%+v)", h.url, st.Duplicates, st)
		} else if st.Duplicates != 0 {
			t.Errorf("%s: %d writes stored twice, want 0", h.url, st.Duplicates)
		}
	}
	for key, chs := range changes {
		t.Logf("breaker %s: %d changes", key, len(chs))
		from := resilient.BreakerClosed
		for i, ch := range chs {
			if ch.From != from || ch.From == ch.To {
				t.Errorf("breaker %s: change %d is %v → %v after %v", key, i, ch.From, ch.To, from)
			}
			from = ch.To
		}
	}

	// Per call.
	var observed int
	type hostCount struct{ answers, retries, hedges float64 }
	counts := map[*chaosHost]*hostCount{}
	for _, c := range perCall {
		checkChaosCall(t, c)
		observed += len(c.attempts)
		hc := counts[c.host]
		if hc == nil {
			hc = &hostCount{}
			counts[c.host] = hc
		}
		for i, a := range c.attempts {
			if a.StatusCode != 0 && (a.Class == resilient.Success || a.Class == resilient.Permanent) {
				hc.answers++
			}
			hc.hedges += float64(a.Hedges)
			if i > 0 && wired(a) {
				prev := c.attempts[i-1]
				if prev.Class == resilient.Throttled || prev.RetryAfter > 0 {
					hc.retries += chaosBudget.ThrottledCost
				} else {
					hc.retries++
				}
			}
		}
	}
	if observed != len(all) {
		t.Errorf("the context observer saw %d attempts, WithObserver %d", observed, len(all))
	}
	for _, h := range hosts {
		hc := counts[h]
		if hc == nil {
			continue
		}
		// Every answer deposits Ratio (capped at Burst); every retry
		// sent and every hedged copy spends from it.
		spent, bound := hc.retries+hc.hedges, chaosBudget.Burst+chaosBudget.Ratio*hc.answers
		if spent > bound+1e-9 {
			t.Errorf("%s: retries and hedges cost %.1f from the budget, want at most %.1f (%.0f answers)", h.url, spent, bound, hc.answers)
		}
		t.Logf("%s: %.0f answers, %.1f retries' cost, %.0f hedges; %+v", h.url, hc.answers, hc.retries, hc.hedges, h.srv.Stats())
	}
}

// wired reports whether an attempt surely went to the base RoundTripper:
// it was not refused locally, nor canceled (before it was sent, or after).
func wired(a resilient.Attempt) bool {
	return !refusedLocally(a) && a.Outcome != resilient.OutcomeCanceled
}

// refusedLocally reports whether an attempt was refused by a layer of the
// chain, without touching the network.
func refusedLocally(a resilient.Attempt) bool {
	switch a.Outcome {
	case resilient.OutcomeCircuitOpen, resilient.OutcomeRateLimited, resilient.OutcomeTooManyInFlight:
		return true
	}
	return false
}

// chaosOne makes call c, with options drawn from r.
func chaosOne(t *testing.T, tr *resilient.Transport, r *rand.Rand, c *chaosCall, ctxKeyID *int) {
	ctx := context.WithValue(context.Background(), ctxKeyID, c)
	ctx = resilient.WithReport(ctx, &c.report)
	var opts []resilient.Option
	if r.IntN(3) == 0 {
		opts = append(opts, resilient.WithMaxRetries(r.IntN(6)))
	}
	if r.IntN(3) == 0 {
		opts = append(opts, resilient.WithBufferedResponse(1<<16))
	}
	if r.IntN(4) == 0 {
		d := time.Duration(1+r.IntN(10)) * time.Second
		opts = append(opts, resilient.WithMaxElapsed(d))
		c.budget = d
	}
	if r.IntN(4) == 0 {
		opts = append(opts, resilient.WithAttemptTimeout(time.Duration(200+r.IntN(2000))*time.Millisecond))
	}
	if r.IntN(5) == 0 {
		opts = append(opts, resilient.WithoutHedging())
	}
	if len(opts) > 0 {
		ctx = resilient.WithCallOptions(ctx, opts...)
	}
	if r.IntN(4) == 0 {
		d := time.Duration(500+r.IntN(8000)) * time.Millisecond
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
		c.budget = min(c.budget, d)
	}
	method, path, body := http.MethodGet, "/v1/posts", ""
	switch r.IntN(5) {
	case 0:
		path = "/v1/usage"
	case 1, 2:
		method, path, body = http.MethodPost, "/v1/posts", fmt.Sprintf(`{"content":"post %s"}`, c.id)
		if c.host.honors && r.IntN(2) == 0 {
			ctx = resilient.WithIdempotencyKey(ctx, "chaos-"+c.id)
		}
	case 3:
		method, path, body = http.MethodPost, "/v1/media/upload-url", fmt.Sprintf(`{"name":"%s.png"}`, c.id)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.host.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Chaos-Call", c.id)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	c.elapsed, c.err = time.Since(start), err
	if resp != nil {
		c.status = resp.StatusCode
		io.Copy(io.Discard, resp.Body) // a cut body's error is the caller's
		resp.Body.Close()
	}
}

// checkChaosCall checks what one call of TestChaos returned against its
// Report, its observer's records and the server's count of its requests.
func checkChaosCall(t *testing.T, c *chaosCall) {
	t.Helper()
	rep := c.report
	if c.err != nil {
		var e *resilient.Error
		var re *resilient.RequestError
		if !errors.As(c.err, &e) && !errors.As(c.err, &re) {
			t.Errorf("call %s: error %T %v, want *Error or *RequestError", c.id, c.err, c.err)
		}
		if !strings.HasPrefix(c.err.Error(), "resilient: ") {
			t.Errorf("call %s: error %q without the resilient: prefix", c.id, c.err)
		}
	}
	if c.elapsed > c.budget+chaosSlack {
		t.Errorf("call %s took %v, past its budget of %v (%d attempts)", c.id, c.elapsed, c.budget, rep.Attempts)
	}
	if rep.Duration != c.elapsed {
		t.Errorf("call %s: Report.Duration = %v, took %v", c.id, rep.Duration, c.elapsed)
	}
	if rep.StatusCode != c.status {
		t.Errorf("call %s: Report.StatusCode = %d, returned %d", c.id, rep.StatusCode, c.status)
	}
	var hedges, local, uncertain int
	for _, a := range c.attempts {
		hedges += a.Hedges
		if refusedLocally(a) {
			local++
		}
		if a.Outcome == resilient.OutcomeCanceled || a.StatusCode == 0 {
			uncertain++ // it may or may not have reached the server
		}
	}
	if rep.Attempts != len(c.attempts)+hedges || rep.Hedges != hedges {
		t.Errorf("call %s: Report says %d attempts, %d hedges; the observer saw %d attempts, %d hedges",
			c.id, rep.Attempts, rep.Hedges, len(c.attempts), hedges)
	}
	c.host.mu.Lock()
	seen := c.host.byCall[c.id] - c.host.resent[c.id]
	c.host.mu.Unlock()
	wire := rep.Attempts - local
	if seen > wire || seen < wire-hedges-uncertain {
		t.Errorf("call %s: the server read %d requests; Report: %d attempts (%d hedges), %d refused locally; observer: %+v",
			c.id, seen, rep.Attempts, hedges, local, c.attempts)
	}
	if hedges == 0 && uncertain == 0 && seen != wire {
		t.Errorf("call %s: the server read %d requests, the Report says %d reached it", c.id, seen, wire)
	}
}

// chaosRoundTripFunc is a RoundTripper made of a function.
type chaosRoundTripFunc func(*http.Request) (*http.Response, error)

func (f chaosRoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
