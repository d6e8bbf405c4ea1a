package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Hedging sends a copy of an attempt that has not answered after a delay,
// to cut the slow tail of a host's latencies: the first answer wins, the
// other copies are canceled, and their responses closed.
//
// Only requests that are safe to send twice are hedged: GET, HEAD and
// OPTIONS, and writes that carry a key to a host the caller says
// deduplicates by key: named with WithKeyHonoringHosts, or under a key the
// caller set (not a host learned from its answers, which may stop
// deduplicating without saying so); and only when their body can be sent again
// concurrently: no body, GetBody, or a body captured as the attempt sent
// it (no GetBody, not over WithMaxBufferedBody), once the attempt has sent
// it whole (a body rewound by seeking, a file, is not). Every copy carries
// the same idempotency key, goes through the rate limiter, and spends one retry
// from the host's retry budget; none is sent while the host is paused
// after a 429, its breaker is not closed, or it has no slot free
// (WithMaxInFlight) or no token of its pace (WithRateLimit) at once (a
// copy never waits for either), nor for a call allowed no retry
// (WithMaxRetries(0)), which is one request, nor once the caller gave up
// on the call or its deadline (the context's, WithMaxElapsed's) passed,
// whether or not the attempt has returned yet. A copy that never reaches the
// wire (refused by the rate limiter, the breaker or the limit of attempts
// in flight, canceled while it waits for the rate limiter because another
// copy answered, whose body GetBody failed to make, or made only once
// the attempt was decided, or whose captured body the attempt was still
// sending) gives back what it spent, and is no hedge: it is
// not counted (Report.Hedges, Attempt.Hedges) nor numbered (the copies sent
// are hedges 1, 2, … in the order they reach the wire). A copy of a keyed
// write that gets no answer after it may have been sent (its connection
// lost) is an attempt lost, whichever copy's result the attempt returns:
// a 409 to a retry that follows is the server still holding the key, and
// is retried with the same key, as after an attempt lost. Hedges of a host
// are also bounded to one in twenty of its calls (plus ten), so that a
// host that slows down as a whole is not sent twice the load. Copies are paid for
// from the retry budget: a Transport without one (WithoutRetryBudget)
// sends none.
//
// With WithBufferedResponse, a copy that gets a success reads its body
// within its attempt, and answers once it has read it: a copy whose body
// breaks or stalls does not win, and the host's latencies include the
// reads.
//
// The zero value hedges adaptively, at the host's recent latency at the
// 0.95 quantile, once the host has answered 20 times.
type Hedging struct {
	// Delay is how long an attempt may go unanswered before a copy is
	// sent. Zero means adaptive: the host's recent time to response
	// headers at Quantile, and at least 2ms; no copy is sent before the
	// host has answered 20 times. A fixed Delay below 1ms is taken for a
	// units mistake (1, meant as a second, is 1ns: a copy of nearly every
	// request at once): New panics on it; given per call
	// (WithCallOptions), it counts as 1ms.
	Delay time.Duration

	// MaxHedges is how many copies an attempt may get, one Delay apart
	// (default 1).
	MaxHedges int

	// Quantile is the quantile of the host's latencies an adaptive Delay
	// waits for, in (0, 1) (default 0.95).
	Quantile float64
}

// Defaults and bounds of Hedging.
const (
	DefaultHedgeQuantile = 0.95
	minHedgeDelay        = 2 * time.Millisecond
	minHedgeSamples      = 20
	hedgeShare           = 0.05 // of a host's calls, at most, get a copy
	// hedgeBurst is the most copies a host's hedge allowance holds, and
	// what it starts with: slow answers come in clusters, and with room
	// for one copy a quarter of them would find the allowance spent (a
	// 2% slow tail keeps 0.5% of calls slow, and its p99.9 with them).
	hedgeBurst = 10
)

// WithHedging turns hedging on (see Hedging); it applies per call too (see
// WithCallOptions). It panics if a value is negative, or if Quantile is not
// in [0, 1).
func WithHedging(h Hedging) Option {
	mustNotBeNegative("WithHedging Delay", h.Delay)
	mustNotBeNegative("WithHedging MaxHedges", h.MaxHedges)
	if h.Quantile < 0 || h.Quantile >= 1 || math.IsNaN(h.Quantile) {
		panic(fmt.Sprintf("resilient: WithHedging Quantile: %v is not in [0, 1)", h.Quantile))
	}
	if h.MaxHedges == 0 {
		h.MaxHedges = 1
	}
	if h.Quantile == 0 {
		h.Quantile = DefaultHedgeQuantile
	}
	return func(c *config) { c.hedging = &h }
}

// WithoutHedging turns hedging off (the default), for instance for one
// call of a Transport that hedges.
func WithoutHedging() Option {
	return func(c *config) { c.hedging = nil }
}

// errHedgeLost is the cause of a copy canceled because another answered
// first.
var errHedgeLost = errors.New("resilient: another copy of the attempt answered first")

// hedgeable reports whether the call's attempts may be hedged.
func (c *call) hedgeable(req *http.Request) bool {
	if c.cfg.hedging == nil || c.cfg.maxRetries == 0 || c.t.budgets == nil {
		return false // a call allowed no retry is one request (WithMaxRetries)
	}
	if hasBody(req) && req.GetBody == nil && (c.capture == nil || c.capture.seeker != nil) {
		return false // a body rewound by seeking has one reader at a time
	}
	if c.hostBudget() == nil {
		return false // no budget to spend: a request without a host
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	// A keyed write only on the caller's word that its host dedupes:
	// named, or its key set by the caller. A host learned from its
	// answers is not hedged to: a copy is a second send with no failure
	// to recover from, and a host that stopped deduplicating (rolled
	// back) says so in no answer, its copies canceled once one answers.
	return c.write && c.key != "" && (c.callerKey || c.t.keys.isNamed(c.req.URL.Scheme, c.req.URL.Host))
}

// hedgeDelay returns the wait before the first copy, or false when none is
// sent.
func (c *call) hedgeDelay(hb *hostBudget) (time.Duration, bool) {
	h := c.cfg.hedging
	if h.Delay > 0 {
		return h.Delay, true
	}
	lat := hb.latencies()
	d, ok := lat.quantile(h.Quantile)
	return max(d, minHedgeDelay), ok
}

// hedgeAllowed reports whether a copy may be sent now, and spends what it
// costs: the host's breaker is closed, it is not paused, and its retry
// budget and hedge allowance pay for it.
func (c *call) hedgeAllowed(req *http.Request, hb *hostBudget) bool {
	t := c.t
	if t.breakers != nil {
		if e := t.breakers.get(req, nil); e != nil && e.state.Load() != int32(gobreaker.StateClosed) {
			return false
		}
	}
	if t.rl != nil && t.rl.paused(req) {
		return false
	}
	if t.bulkhead != nil && t.bulkhead.full(req) {
		return false // a copy does not wait for a slot (WithMaxInFlight)
	}
	if !hb.takeHedge() {
		return false
	}
	if !t.budgets.withdraw(hb, false) {
		hb.returnHedge() // no copy is sent: it costs nothing
		return false
	}
	return true
}

// live reports whether the call may still send a copy: its caller has not
// given up on it (see canceled), and its deadline, the context's or the
// budget's (WithMaxElapsed), has not passed. The attempt itself fails at
// either, but only once the base returns, which a base that does not
// watch its context may not do for a while.
func (c *call) live() bool {
	return !c.canceled() && (c.deadline.IsZero() || c.t.clock.now().Before(c.deadline))
}

// paused reports whether req's partition is paused after a 429.
func (rl *rateLimiter) paused(req *http.Request) bool {
	var clock lazyNow
	return rl.pauseEnd(req, &clock).After(clock.get())
}

// hedgeCopy is the result of one copy of a hedged attempt.
type hedgeCopy struct {
	resp   *http.Response
	err    error
	st     *attemptState
	req    *http.Request
	dur    time.Duration
	cancel context.CancelCauseFunc
	done   bool
	// panicked says that the layers below panicked with panicVal, on the
	// copy's goroutine: settle raises it again on the caller's.
	panicked bool
	panicVal any
}

// hedgeRun coordinates the copies of one attempt.
type hedgeRun struct {
	mu      sync.Mutex
	copies  []*hedgeCopy // [0] is the attempt itself
	winner  int          // -1 until a copy wins
	running int
	results chan int // the index of the copy that decides the attempt, when not the attempt itself
	stopped bool     // no more copies are sent
	sent    int      // copies that reached the base RoundTripper (see wire)
	timer   *time.Timer
	keyed   bool // copies of a keyed write: see finish
	// created says that the copy that won a keyed write's run got a
	// success that is no replay: another copy's, too, proves that the
	// host ignores keys.
	created bool
	// lost says that a copy of a keyed write failed after it may have
	// been sent: the server may hold its key (see settle).
	lost bool
}

// wire lets copy st of run go on to the base RoundTripper, below the
// layers that may refuse it (the rate limiter, the limit of attempts in
// flight, the breaker): the copies are numbered as they are sent, so that
// the n-th copy sent is hedge n (and its resend count follows the
// requests sent), whatever the copies before it that never were. A copy
// whose attempt was decided meanwhile is not sent: it fails with
// errHedgeLost, as its canceled context would make the base fail it.
func (run *hedgeRun) wire(st *attemptState) error {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.stopped {
		return errHedgeLost
	}
	run.sent++
	st.hedge = run.sent
	return nil
}

// sendHedged sends attempt n of the call with hedging: it returns the
// winning copy's result, after copying its state into st. areq is sent as
// the attempt itself; copies get their bodies from copyBody.
func (c *call) sendHedged(n int, areq *http.Request, st *attemptState) (*http.Response, error) {
	hb := c.hostBudget()
	if hb.depositHedge() {
		c.t.budgets.use(hb) // the host is called: its budget is not idle (see sweep)
	}
	delay, ok := c.hedgeDelay(hb)
	start := st.start // the retry loop's reading
	if start.IsZero() {
		start = c.t.clock.now()
	}
	if !ok {
		resp, err := c.t.inner.roundTrip(areq, st)
		if err == nil {
			hb.latencies().record(time.Since(start))
		}
		return resp, err
	}
	// One send at most, whatever MaxHedges: finish decides the attempt
	// once.
	run := &hedgeRun{winner: -1, results: make(chan int, 1), keyed: c.write && c.key != ""}
	ctx, cancel := context.WithCancelCause(areq.Context())
	first := &hedgeCopy{st: st, req: areq.WithContext(ctx), cancel: cancel}
	run.copies = append(run.copies, first)
	run.running = 1
	run.mu.Lock()
	run.timer = time.AfterFunc(delay, func() { c.launchCopy(run, n, areq, hb, delay, start) })
	run.mu.Unlock()

	resp, err := c.sendFirst(run, first.req, st)
	first.dur = time.Since(start)
	idx := run.finish(c, 0, resp, err)
	if idx < 0 {
		// The attempt failed and copies are in flight: wait for them.
		idx = run.wait()
	}
	return c.settle(run, idx, st, hb, start)
}

// sendFirst sends the attempt itself, the first copy of run. When the
// layers below panic, the panic goes on to the caller, as without hedging,
// and the run ends with it (see abandon).
func (c *call) sendFirst(run *hedgeRun, req *http.Request, st *attemptState) (*http.Response, error) {
	ended := false
	defer func() {
		if !ended {
			run.abandon()
		}
	}()
	resp, err := c.t.inner.roundTrip(req, st)
	ended = true
	return resp, err
}

// launchCopy sends copy k (1-based) of attempt n, on the timer's goroutine,
// after arming the next one. The copy's body is made without run's lock:
// GetBody is the caller's code, which may take its time, and an answer
// that comes meanwhile must not wait for it (finish takes the lock).
//
// The copy runs the caller's code on this goroutine, from its first step
// to its last: GetBody, the functions that key the breaker, the rate
// limiter and the limit of attempts in flight, a QuotaStore, the layers
// below and a Classifier. A panic in any of them would end the process:
// it goes to the caller instead (see hedgeRun.panicked).
func (c *call) launchCopy(run *hedgeRun, n int, areq *http.Request, hb *hostBudget, delay time.Duration, start time.Time) {
	k := -1         // the copy's index in run.copies, once it is there
	locked := false // run.mu is held
	paid := false   // hedgeAllowed took what the copy costs, not given back yet
	ended := false  // the copy returned, rather than panicked
	defer func() {
		if !ended {
			p := recover()
			if locked {
				run.mu.Unlock()
			}
			if paid {
				paid = false
				c.unsentHedge(hb) // a copy that panicked before it was sent
			}
			if idx := run.panicked(k, p); idx >= 0 {
				run.results <- idx
			}
		}
	}()
	run.mu.Lock()
	locked = true
	allowed := !run.stopped && run.winner < 0 && c.live() && c.hedgeAllowed(areq, hb)
	locked = false
	run.mu.Unlock()
	if !allowed {
		ended = true
		return
	}
	paid = true
	body, err := c.copyBody(areq)
	if err != nil {
		paid = false
		c.unsentHedge(hb)
		ended = true
		return
	}
	run.mu.Lock()
	locked = true
	if run.stopped || run.winner >= 0 {
		// The attempt was decided while GetBody ran.
		locked = false
		run.mu.Unlock()
		if body != nil {
			body.Close()
		}
		paid = false
		c.unsentHedge(hb)
		ended = true
		return
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	req := areq.WithContext(ctx)
	req.Body = body
	t0 := c.t.clock.now() // the copy's one reading, for every layer
	st := new(attemptState)
	c.beginAttempt(st, n, run.copies[0].st.maxAttempts, t0)
	cp := &hedgeCopy{st: st, req: req, cancel: cancel}
	k = len(run.copies)
	st.hedge, st.run, st.bufferMax = k, run, run.copies[0].st.bufferMax
	run.copies = append(run.copies, cp)
	run.running++
	paid = false // from here, the copy gives back what it took unless it reaches the base
	if k < c.cfg.hedging.MaxHedges {
		run.timer = time.AfterFunc(delay, func() { c.launchCopy(run, n, areq, hb, delay, start) })
	}
	locked = false
	run.mu.Unlock()

	resp, err := c.t.inner.roundTrip(req, st)
	if !st.classified {
		// The copy never reached the base (see wire): the rate limiter,
		// the limit of attempts in flight or the breaker refused it, or
		// its attempt was decided while it waited for the rate limiter.
		// It is no hedge.
		c.unsentHedge(hb)
	}
	cp.dur = time.Since(t0)
	if idx := run.finish(c, k, resp, err); idx >= 0 {
		run.results <- idx
	}
	ended = true
}

// unsentHedge gives back to the host's hedge allowance and retry budget
// what hedgeAllowed took for a copy that never reached the wire.
func (c *call) unsentHedge(hb *hostBudget) {
	hb.returnHedge()
	c.t.budgets.refund(hb)
}

// copyBody returns the body of a copy: none, one from GetBody, or, for a
// body without GetBody, its capture once the attempt has sent it whole (a
// copy whose body is still being sent is not sent).
func (c *call) copyBody(areq *http.Request) (io.ReadCloser, error) {
	if !hasBody(areq) {
		return areq.Body, nil
	}
	var b io.ReadCloser
	if c.req.GetBody == nil {
		var ok bool
		if b, ok = c.capture.whole(); !ok {
			return nil, errBodyNotReplayable
		}
	} else {
		var err error
		if b, err = getBody(c.req); err != nil {
			return nil, err
		}
	}
	return &checkedBody{rc: b, want: c.req.ContentLength}, nil
}

// finish records copy k's result. It returns the index of the copy that
// decides the attempt when this result settles it: k for an answer that
// is not retryable; when the last copy running has failed, all have, and
// the one allFailed picks decides (no more copies are sent then: the
// retry loop takes over). A 409 to a copy of a keyed write is the server
// saying that another copy holds the key: it is no answer. It returns -1
// otherwise; a copy that ends after another won is closed here. A copy
// of a keyed write that failed after it reached the base marks the run
// lost (see settle). A copy of a keyed write that gets a success that is
// no replay, its body read whole or not, once another copy won with one,
// is a second create for one key: the host is forgotten as one that
// honors keys (see ignoresKeys).
func (run *hedgeRun) finish(c *call, k int, resp *http.Response, err error) int {
	run.mu.Lock()
	cp := run.copies[k]
	run.mu.Unlock()
	if err != nil && resp != nil {
		resp.Body.Close()
		resp = nil
	}
	if err == nil && resp == nil {
		err = errNilResponse
	}
	reached := cp.st.classified // by the classifier, right above the base
	if !reached {
		c.t.cls.classify(cp.st, resp, err, time.Now)
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	cp.resp, cp.err, cp.done = resp, err, true
	run.running--
	if run.keyed && err != nil && reached && !cp.st.neverSent {
		run.lost = true
	}
	if run.winner >= 0 {
		if run.created && (created(resp) || created(cp.st.cut)) {
			c.t.keys.forget(c.req.URL.Scheme, c.req.URL.Host)
		}
		cp.discard()
		return -1
	}
	answered := resp != nil && !cp.st.class.Retryable() && !(run.keyed && resp.StatusCode == http.StatusConflict)
	if !answered {
		if run.running > 0 {
			return -1 // another copy may still answer
		}
		k = run.allFailed(k)
	}
	run.decide(k)
	run.created = run.keyed && created(run.copies[k].resp)
	return k
}

// allFailed returns the copy whose result is the attempt's when every copy
// failed, last being the one that ended last, as the attempt would have
// failed without hedging: the first copy sent that got a response (the
// attempt's own when it got one), which the retry loop returns once it
// stops, else the first that failed with an error. A keyed write's 409,
// which says that another copy holds the key, decides only when every copy
// got one.
func (run *hedgeRun) allFailed(last int) int {
	firstErr := -1
	for i, cp := range run.copies {
		switch {
		case cp.resp != nil && !(run.keyed && cp.resp.StatusCode == http.StatusConflict):
			return i
		case cp.err != nil && firstErr < 0:
			firstErr = i
		}
	}
	if firstErr >= 0 {
		return firstErr
	}
	return last
}

// decide makes copy k the one that decides the attempt, with run.mu held:
// no more copies are sent, and those in flight are canceled.
func (run *hedgeRun) decide(k int) {
	run.winner, run.stopped = k, true
	if run.timer != nil {
		run.timer.Stop()
	}
	for i, other := range run.copies {
		if i != k && !other.done {
			other.cancel(errHedgeLost)
		}
	}
}

// panicked records that copy k panicked with p, on the copy's own
// goroutine: the layers below it, or the caller's code it ran before or
// after them (k is -1 for a copy that panicked before it was in the run,
// in GetBody for instance). It returns the copy's index when the panic
// decides the attempt: the caller still waits for it, and gets the panic,
// as it would get a panic of the attempt itself (see settle). It returns
// -1 when another copy decided the attempt already: the panic is dropped
// with the copy, for no caller waits for it any more.
func (run *hedgeRun) panicked(k int, p any) int {
	run.mu.Lock()
	defer run.mu.Unlock()
	if k < 0 {
		if run.winner >= 0 {
			return -1
		}
		k = len(run.copies)
		run.copies = append(run.copies, &hedgeCopy{cancel: func(error) {}, done: true})
	}
	cp := run.copies[k]
	if !cp.done { // finish may have ended it before the panic
		cp.done = true
		run.running--
	}
	if run.winner >= 0 {
		cp.cancel(errHedgeLost)
		return -1
	}
	cp.panicked, cp.panicVal = true, p
	run.decide(k)
	return k
}

// wait returns the index of the copy that decides the attempt, once the
// attempt itself failed.
func (run *hedgeRun) wait() int {
	for idx := range run.results {
		return idx
	}
	return 0
}

// abandon ends the run of an attempt whose own request panicked: no copy
// is sent any more, those in flight are canceled, and the answers of those
// that ended are closed, for no caller will read them.
func (run *hedgeRun) abandon() {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.stopped = true
	if run.winner < 0 {
		run.winner = 0 // the copies that end later are discarded (see finish)
	}
	if run.timer != nil {
		run.timer.Stop()
	}
	for _, cp := range run.copies {
		if cp.done {
			cp.discard()
		} else {
			cp.cancel(nil)
		}
	}
}

// discard closes the response of a copy that lost, its context canceled
// first. Its body is not drained: settle discards on the caller's
// goroutine, where a drain of a body that stalls would hold the winner's
// answer (up to maxReadWait), and the lock of the run with it. The
// connection of a body not read to its end is closed rather than reused.
func (cp *hedgeCopy) discard() {
	cp.cancel(errHedgeLost)
	if cp.resp != nil {
		cp.resp.Body.Close()
		cp.resp = nil
	}
}

// settle makes copy idx the attempt's result: its state goes into st, the
// other copies are closed as they end, and the host's latency is recorded.
func (c *call) settle(run *hedgeRun, idx int, st *attemptState, hb *hostBudget, start time.Time) (*http.Response, error) {
	run.mu.Lock()
	w := run.copies[idx]
	for i, cp := range run.copies {
		if i != idx && cp.done {
			cp.discard()
		}
	}
	sent := run.sent // the attempt is decided: no copy is sent any more (see wire)
	if run.lost {
		// A copy got no answer after it may have been sent, whichever
		// copy decides: the server may still hold the key, and a 409
		// to a retry says so (see keyHeld), as after an attempt lost
		// without hedging.
		c.lost = true
	}
	run.mu.Unlock()
	if w.panicked {
		w.cancel(nil)
		panic(w.panicVal) // the copy's, on the caller's goroutine
	}
	c.hedges += sent
	c.sent += sent
	if idx != 0 {
		*st = *w.st
	}
	st.hedges = sent
	if w.resp != nil {
		// The attempt's latency, from its first copy's start: a slow
		// answer cut short by a copy still counts as slow, so the
		// quantile does not drift down to the copies' own latency.
		hb.latencies().record(time.Since(start))
		// The copy's context ends when its body is closed. A 101's body
		// is the upgraded connection: it stays writable.
		body := cancelOnClose{ReadCloser: w.resp.Body, cancel: w.cancel}
		if rw, ok := w.resp.Body.(io.Writer); ok && w.resp.StatusCode == http.StatusSwitchingProtocols {
			w.resp.Body = &cancelOnCloseRW{cancelOnClose: body, w: rw}
		} else {
			w.resp.Body = &body
		}
	} else {
		w.cancel(nil)
	}
	return w.resp, w.err
}

// cancelOnClose releases a copy's context when its response body is
// closed, or read to its end (as net/http releases its own there).
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel(nil)
	}
	return n, err
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// cancelOnCloseRW is a cancelOnClose over the body of a 101 Switching
// Protocols response: the upgraded connection, which stays writable.
type cancelOnCloseRW struct {
	cancelOnClose
	w io.Writer
}

// Read reads the upgraded connection, whose end on the server's side leaves
// it writable: the copy's context lives until it is closed.
func (b *cancelOnCloseRW) Read(p []byte) (int, error) { return b.ReadCloser.Read(p) }

func (b *cancelOnCloseRW) Write(p []byte) (int, error) { return b.w.Write(p) }

// takeHedge spends one copy of the host's hedge allowance.
func (b *hostBudget) takeHedge() bool {
	_, ok := takeTokens(&b.hedgeTokens, budgetUnit)
	return ok
}

// returnHedge gives back to the host's hedge allowance the copy that
// takeHedge spent, when that copy is not sent after all.
func (b *hostBudget) returnHedge() {
	addTokens(&b.hedgeTokens, budgetUnit, hedgeBurst*budgetUnit)
}

// depositHedge credits a call of the host to its hedge allowance, and
// reports whether the allowance was not full.
func (b *hostBudget) depositHedge() bool {
	const share, burst = hedgeShare * budgetUnit, hedgeBurst * budgetUnit
	_, changed := addTokens(&b.hedgeTokens, share, burst)
	return changed
}

// latencies returns the host's latency histogram, made on first use.
func (b *hostBudget) latencies() *latencyHist {
	if h := b.lat.Load(); h != nil {
		return h
	}
	b.lat.CompareAndSwap(nil, new(latencyHist))
	return b.lat.Load()
}

// latencyHist is a decaying histogram of a host's times to response
// headers, in buckets a quarter of an octave wide from 100µs; it is safe
// for concurrent use and takes no lock.
type latencyHist struct {
	buckets [latencyBuckets]atomic.Int64
	n       atomic.Int64 // records since the last decay
	total   atomic.Int64 // records held (decayed)
}

const (
	latencyBuckets = 96
	latencyBase    = 100 * time.Microsecond
	latencyDecay   = 512 // records between two halvings
)

// bucketOf returns the bucket of d: floor(4·log2(d/latencyBase)).
func bucketOf(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(4 * math.Log2(float64(d)/float64(latencyBase)))
	return min(i, latencyBuckets-1)
}

// upperBound returns the upper bound of bucket i.
func upperBound(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Exp2(float64(i+1)/4))
}

func (h *latencyHist) record(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.total.Add(1)
	if h.n.Add(1) >= latencyDecay {
		// Halve: recent latencies weigh more. Racing records may be lost,
		// which a histogram of recent behaviour can afford.
		h.n.Store(0)
		var total int64
		for i := range h.buckets {
			v := h.buckets[i].Load() / 2
			h.buckets[i].Store(v)
			total += v
		}
		h.total.Store(total)
	}
}

// quantile returns the upper bound of the bucket holding quantile q, or
// false with too few records.
func (h *latencyHist) quantile(q float64) (time.Duration, bool) {
	total := h.total.Load()
	if total < minHedgeSamples {
		return 0, false
	}
	want := int64(math.Ceil(q * float64(total)))
	var acc int64
	for i := range h.buckets {
		if acc += h.buckets[i].Load(); acc >= want {
			return upperBound(i), true
		}
	}
	return upperBound(latencyBuckets - 1), true
}
