package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"
)

// This file holds the race of a hedged attempt's copies: their launch, the
// answer that wins, and the end of the others.

// hedgeCopy is the result of one copy of a hedged attempt.
type hedgeCopy struct {
	resp   *http.Response
	err    error
	st     *attemptState
	req    *http.Request
	cancel context.CancelCauseFunc
	done   bool
	// trace is the copy's write trace, a keyed write's (see
	// call.copyTrace); nil for none.
	trace *writeTrace
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
	sent    int      // copies that reached the base RoundTripper (see wire), the last number given
	// gaps holds the numbers of copies the base declined after a later
	// copy was numbered (see unwire): no copy sent has them. Nil unless
	// the base declines a copy late.
	gaps  []int
	timer *time.Timer
	// delay and launch arm the first copy, once the attempt itself is
	// sent (see wire).
	delay  time.Duration
	launch func()
	keyed  bool // copies of a keyed write: see finish
	// created says that the copy that won a keyed write's run got a
	// success that is no replay: another copy's, too, proves that the
	// host ignores keys.
	created bool
	// twice says that a copy that lost got such a second success; told
	// says that the call has learned from the winner's answer (see
	// call.learnKeys). Whichever comes last forgets the host, so that
	// the outcome is that of both answers seen in one order.
	twice, told bool
	// lost says that a copy of a keyed write failed after it may have
	// been sent: the server may hold its key (see settle).
	lost bool
	// mem is the bytes of a body in memory, which every copy sends (see
	// memoryBody), or memErr the error of their copy; taken once, under
	// mu, by the first copy (see launchCopy) or by the base's own resend
	// of the attempt, which reads them too (see sendHedged, takeMem).
	mem    memoryBytes
	memErr error
	// body is the body made last, the attempt's or a copy's, when the
	// caller's GetBody may share one source among them (see
	// call.trackBody); nil otherwise. getMu guards it and sealed (held
	// for neither GetBody nor a wait: see nextBody); sealed says that no
	// copy calls GetBody any more (see sealBody).
	getMu  sync.Mutex
	body   *checkedBody
	sealed bool
	// tracks says that body is set (see call.trackBody); set before the
	// run's first copy is armed.
	tracks bool
	// getting is closed once the GetBody of the copy that took the
	// attempt's unread body over returns, for the attempt's Read that
	// waits for it (see checkedBody.beginRead); nil when none runs.
	// Guarded by getMu.
	getting chan struct{}
	// attemptCtx is the attempt's context, which bounds that wait when
	// the attempt has no deadline of its own, and whose cause a Read it
	// cut returns (see checkedBody.waitForCopy); set with body.
	attemptCtx context.Context
	// getBody is the caller's GetBody, read as the run began, for an
	// attempt's Read that renews its body (see renew), which may run once
	// RoundTrip returned; set with body.
	getBody func() (io.ReadCloser, error)
	// logger is the Transport's (nil for none), which records a copy's
	// panic that no caller waits for (see panicked).
	logger *slog.Logger
}

// wire lets copy st of run go on to the base RoundTripper, below the
// layers that may refuse it (the rate limiter, the limit of attempts in
// flight, the breaker): the copies are numbered as they are sent, so that
// the n-th copy sent is hedge n (and its resend count follows the
// requests sent), whatever the copies before it that never were. A copy
// whose attempt was decided meanwhile, or failed itself (see finish), is
// not sent: its context is canceled, and it fails with errHedgeLost, as
// the base would fail it then; the layers above it (a breaker) count
// nothing of a copy canceled.
//
// For the attempt itself (st.hedge 0), wire arms the first copy: the
// hedging delay runs from when the attempt is sent, not while it waits
// for the rate limiter or a slot of its host. A copy is for a slow
// answer, not a slow queue: one sent while the attempt still waits for
// its turn would go to the wire ahead of it, and the attempt after it.
func (run *hedgeRun) wire(st *attemptState) error {
	run.mu.Lock()
	defer run.mu.Unlock()
	if st.hedge == 0 {
		if !run.stopped {
			run.timer = time.AfterFunc(run.delay, run.launch)
		}
		return nil
	}
	if run.stopped {
		run.copies[st.hedge].cancel(errHedgeLost) // st.hedge is its index until it is sent
		return errHedgeLost
	}
	run.sent++
	st.hedge = run.sent
	return nil
}

// unwire takes back from copy st of run the number wire gave it, once the
// base declined it (http.ErrSkipAltProtocol: see declinedUnsent), or once
// its Tracer's StartAttempt panicked (see launchCopy): the copy was never
// sent, by the base nor by the http.Transport above, which never sees a
// copy, and it is no hedge, not counted nor numbered (see Hedging). The
// next copy sent takes its number; when a later copy took one meanwhile
// (a base that declines late), st's is a gap, and not
// counted; once the copies above it gave theirs back too, it is the next
// copy's again, so that no number past the copies sent is given. The copy
// is marked as one that never reached the wire: it says
// nothing of the host, and stops no later copy (see finish), as a copy a
// layer refused. A copy still in the base when the attempt is decided is
// counted then, as one sent: a base declines at once, before it dials.
func (run *hedgeRun) unwire(st *attemptState) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if st.hedge != run.sent {
		run.gaps = append(run.gaps, st.hedge)
		st.reached = false
		return
	}
	run.sent--
	for i := 0; i < len(run.gaps); {
		if run.gaps[i] != run.sent {
			i++
			continue
		}
		// The gap below the number given back is the top now: the
		// next copy sent takes it.
		run.gaps = append(run.gaps[:i], run.gaps[i+1:]...)
		run.sent--
		i = 0
	}
	st.reached = false
}

// sentCopies returns the number of the run's copies sent. run.mu is held.
func (run *hedgeRun) sentCopies() int {
	return run.sent - len(run.gaps)
}

// answered stops the run's copies yet to be sent, once the host answered
// the attempt itself with an error status, whose body the classifier reads
// for its envelope (up to 2 s of a body that trickles or stalls): a copy
// is for an attempt the host has not answered (the hedging delay is a time
// to response headers), and one sent then, while the answer is being read,
// would be a second request for a 404, or the retry of a 503 without its
// backoff (see finish). So does a copy's answer with an error status (but
// a keyed write's 409, another copy holding the key): the next copy, sent
// while its body is read, would be the retry of a 429 inside the wait it
// asked for, which finish stops only once that body is read. Copies
// already sent may still answer first.
func (run *hedgeRun) answered() {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.stopped = true
	if run.timer != nil {
		run.timer.Stop()
	}
}

// sendHedged sends attempt n of the call with hedging: it returns the
// winning copy's result, after copying its state into st. areq is sent as
// the attempt itself; copies get their bodies from copyBody.
func (c *call) sendHedged(n int, areq *http.Request, st *attemptState) (*http.Response, error) {
	hb := c.hostBudget()
	// The call's first attempt credits the call (its retries spend from
	// the budget, which marks it used): a retry earns no copy.
	if n == 1 && hb.depositHedge() {
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
			hb.latencies().record(latencySince(start.Add(st.queued()), st))
		}
		return resp, err
	}
	// One send at most, whatever MaxHedges: finish decides the attempt
	// once.
	run := &hedgeRun{winner: -1, results: make(chan int, 1), keyed: c.write && c.key != "", logger: c.t.cfg.logger}
	ctx, cancel := context.WithCancelCause(areq.Context())
	first := &hedgeCopy{st: st, req: areq.WithContext(ctx), cancel: cancel, trace: c.trace}
	run.copies = append(run.copies, first)
	run.running = 1
	c.trackBody(run, areq, first)
	if n == 1 && c.mem.ok() {
		// The attempt's request carries the caller's GetBody, which the
		// base calls itself to resend it (HTTP/2 after a refused stream
		// or a GOAWAY, HTTP/1 on a reused connection found dead), as a
		// plain client's does: one that Resets the caller's reader, or
		// writes its bytes again (a *bytes.Buffer made anew), would
		// write them while a copy, or a function keying a layer to
		// allow one, reads them (see launchCopy); over
		// WithMaxBufferedBody the copies read the caller's own bytes
		// (see memoryBytes). The resend reads the copies' bytes
		// instead, taken first; the caller's GetBody only when they
		// could not be (a reader Reset to fewer bytes), and no copy
		// reads them then.
		getBody := first.req.GetBody
		first.req.GetBody = func() (io.ReadCloser, error) {
			run.mu.Lock()
			run.takeMem(&c.mem)
			mem, err := run.mem, run.memErr
			run.mu.Unlock()
			if err != nil {
				return getBody()
			}
			return mem.open(), nil
		}
	}
	run.delay, run.launch = delay, func() { c.launchCopy(run, n, areq, hb, delay) }
	st.run = run // the first copy is armed once the attempt is sent (see wire)

	resp, idx, err := c.sendFirst(run, first.req, st)
	if idx < 0 {
		if err == nil && resp != nil && st.answeredAfter == 0 {
			// The host answered the attempt just now: should its
			// answer decide, its latency does not include the wait
			// for the copies.
			st.answeredAfter = max(time.Since(st.start), 1)
		}
		// The attempt failed and copies are in flight: wait for them,
		// one hedging delay at most, and not past the call's end. An
		// attempt whose body a copy took over before it read any (see
		// nextBody) was not sent: the copies are the attempt now.
		patience := delay
		if errors.Is(err, errBodyDetached) {
			patience = math.MaxInt64
		}
		idx = run.wait(c, patience)
	}
	return c.settle(run, idx, st, hb, start)
}

// sendFirst sends the attempt itself, the first copy of run, and records
// its result (see finish), returning the index of the copy that decides
// the attempt, or -1. When the layers below panic, or the attempt's answer
// does as finish closes it (a base's body whose Close panics, the attempt
// having lost to a copy), the panic goes on to the caller, as without
// hedging, and the run ends with it (see abandon): the answers of the
// copies that ended, the winner's included, are closed, and its copies
// sent are counted in the call's Report.
func (c *call) sendFirst(run *hedgeRun, req *http.Request, st *attemptState) (*http.Response, int, error) {
	ended := false
	defer func() {
		if !ended {
			c.countHedges(run.abandon())
		}
	}()
	resp, err := c.t.inner.roundTrip(req, st)
	idx := run.finish(c, 0, resp, err)
	ended = true
	return resp, idx, err
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
func (c *call) launchCopy(run *hedgeRun, n int, areq *http.Request, hb *hostBudget, delay time.Duration) {
	k := -1              // the copy's index in run.copies, once it is there
	locked := false      // run.mu is held
	paid := false        // hedgeAllowed took what the copy costs, not given back yet
	ended := false       // the copy returned, rather than panicked
	refunded := false    // the copy, never sent, gave back what it took
	var st *attemptState // the copy's, once it is in the run

	var body io.ReadCloser // the copy's body, once made
	var creq *http.Request // the copy's request, once made
	defer func() {
		if !ended {
			p := recover()
			if locked {
				run.mu.Unlock()
			}
			if body != nil && (st == nil || st.neverSentCopy()) {
				// A panic before the base got the copy's body (a
				// function that keys a layer, a QuotaStore), or once
				// the base declined it, leaving it to a Transport
				// above that never sees a copy: closed, as the retry
				// loop closes an attempt's.
				body.Close()
			}
			if paid || st != nil && st.neverSentCopy() && !refunded {
				paid = false
				c.unsentHedgeRecovering(hb) // a copy that panicked before it was sent
			}
			if st != nil && (st.wired && !st.reached && !st.classified || st.declined && st.reached) {
				// Numbered as it passed the classifier, it was never
				// sent, and is no hedge (see unwire): its Tracer's
				// StartAttempt panicked, before the base got it; or
				// the base declined it, and the caller's code above
				// the base (the Tracer's end of its span, a
				// Classifier) panicked before the copy's number was
				// taken back below. (A copy unwired already is
				// marked unreached: a panic after that, a
				// SharedBudget's Deposit, must not take its number
				// back twice.)
				run.unwire(st)
			}
			if idx := run.panicked(k, p, creq); idx >= 0 {
				run.results <- idx
			}
		}
	}()
	run.mu.Lock()
	locked = true
	allowed := !run.stopped && run.winner < 0 && !switchesProtocols(areq.Header) && c.live(delay)
	if allowed {
		kreq := c.keyRequestOf(areq)
		if hb.tokens.Load()&budgetDropped != 0 {
			// A full table dropped the budget since the call looked
			// it up (full again, its hedge allowance too, as a new one
			// is): the copy, and the copies after it, pay to the
			// host's budget in the table, which its other calls pay
			// to, not to a second one of the host; so do retries (see
			// call.payRetry). Looked up on the copy's goroutine,
			// under run.mu (the call cannot end: its request is still
			// the caller's to read), into hb, not c.hb: that is the
			// call's own.
			if b := c.t.budgets.get(kreq); b != nil {
				hb = b
			}
		}
		allowed = c.hedgeAllowed(kreq, hb)
	}
	var src http.Request // what makes the copy's body, of the caller's request
	if allowed {
		// The caller's request, and the attempt's that may share its
		// header, are read here, while the call cannot end (that needs
		// run.mu): a copy that loses runs on after RoundTrip returned,
		// when the caller may reuse its request (a poll's next
		// If-None-Match): it reads its own header and URL then.
		creq = areq.Clone(c.sendCtx())
		src.GetBody, src.ContentLength = c.req.GetBody, c.req.ContentLength
		// So too the bytes of a body in memory, which the caller may
		// reuse (a Reset of its reader) once RoundTrip returned.
		run.takeMem(&c.mem)
	}
	locked = false
	run.mu.Unlock()
	if !allowed {
		ended = true
		return
	}
	paid = true
	body, err := c.copyBody(run, creq, &src)
	if err != nil {
		paid = false
		c.unsentHedge(hb)
		ended = true
		return
	}
	run.mu.Lock()
	locked = true
	if run.stopped || run.winner >= 0 || !c.live(delay) {
		// The attempt was decided while GetBody ran, or the call
		// ended (its caller gave up, its deadline passed).
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
	parent := c.sendCtx()
	if c.hidesKey() {
		// The copy's key is no more the caller's than the attempt's: a
		// Transport below must not hedge or resend the copy on it.
		parent = &traceCtx{Context: parent, stamped: c.key, own: c.ownKey}
	}
	var trace *writeTrace
	if first := run.copies[0].trace; first != nil {
		parent, trace = copyTrace(parent, first.keyed)
	}
	ctx, cancel := context.WithCancelCause(parent)
	req := creq.WithContext(ctx)
	req.Body = body
	t0 := c.t.clock.now() // the copy's one reading, for every layer
	st = new(attemptState)
	c.beginAttempt(st, n, run.copies[0].st.maxAttempts, t0)
	st.cutRetried = c.cutRetried
	cp := &hedgeCopy{st: st, req: req, cancel: cancel, trace: trace}
	k = len(run.copies)
	st.hedge, st.run, st.bufferMax = k, run, run.copies[0].st.bufferMax
	run.copies = append(run.copies, cp)
	run.running++
	paid = false // from here, the copy gives back what it took unless it reaches the base
	if k < c.cfg.hedging.MaxHedges {
		run.timer = time.AfterFunc(delay, func() { c.launchCopy(run, n, areq, hb, delay) })
	}
	locked = false
	run.mu.Unlock()

	resp, err := c.t.inner.roundTrip(req, st)
	if st.declined && st.classified {
		run.unwire(st) // numbered as it went on to the base, which declined it
	}
	if !st.classified || st.declined || err != nil && c.callersMistake(st, trace, err) {
		// The copy never reached the base (see wire): the rate limiter,
		// the limit of attempts in flight or the breaker refused it, or
		// its attempt was decided while it waited for the rate limiter.
		// It is no hedge. Or the base declined it (an alternate
		// protocol's RoundTripper without a connection: see
		// classifyErr), which sent nothing. Or it did, and its body,
		// made by the caller's GetBody, broke before the server could
		// act on it: the caller's mistake, which counts against
		// nothing, as an attempt's (see callersMistake). Marked first:
		// a SharedBudget's Deposit that panics here goes to the
		// caller, and the copy does not give back again as it does.
		refunded = true
		c.unsentHedge(hb)
	}
	if err != nil || !st.classified {
		run.giveBack(req.Body)
	}
	if idx := run.finish(c, k, resp, err); idx >= 0 {
		run.results <- idx
	}
	ended = true
}

// takeMem takes the bytes of m, a body in memory, for the run's copies,
// once (see memoryBody): while the call cannot end, or as the base
// resends the attempt, whose GetBody reads them too (see sendHedged).
// Called with mu held.
func (run *hedgeRun) takeMem(m *memoryBody) {
	if m.ok() && !run.mem.ok() && run.memErr == nil {
		run.mem, run.memErr = m.bytes()
	}
}

// switchesProtocols reports whether h, a request's, asks the server to
// switch protocols: an Upgrade header with a value that is not blank, the
// first or a later one (net/http writes each on a line of its own, and a
// WebSocket server reads them all), under any spelling of its name
// (net/http writes a name set by hand as it is). Its
// answer, a 101, is a connection of its own, a WebSocket's session for
// one: a copy would open a second, which a plain client never does, so
// none is sent. It is read only as a copy is about to be sent.
func switchesProtocols(h http.Header) bool {
	for k, vs := range h {
		if !strings.EqualFold(k, "Upgrade") {
			continue
		}
		for _, v := range vs {
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// copyTrace returns a write trace of its own for a hedged copy of an
// attempt that is traced (see call.needsTrace), and parent carrying it,
// composed with the caller's trace if any (see httptrace.WithClientTrace):
// the trace of one copy tells nothing of another's error, and a copy still
// running after its attempt was decided must not count in the trace of
// the retry that follows. keyed is the attempt's trace's (see
// writeTrace.keyed): the copy carries the attempt's header.
//
// Without a caller's trace, the copy's goes in a traceCtx, as an
// attempt's does (see traceWrite): a context of the context package there
// would hide the AfterFunc of the contexts below it, and a caller's own
// context type would cost the copy's cancel a goroutine.
func copyTrace(parent context.Context, keyed bool) (context.Context, *writeTrace) {
	w := new(writeTrace)
	w.arm()
	w.keyed = keyed
	if clientTraceKey == nil || httptrace.ContextClientTrace(parent) != nil {
		return httptrace.WithClientTrace(parent, &w.trace), w
	}
	return &traceCtx{Context: parent, trace: &w.trace}, w
}

// unsentHedge gives back to the host's hedge allowance and retry budget
// what hedgeAllowed took for a copy that never reached the wire.
func (c *call) unsentHedge(hb *hostBudget) {
	hb.returnHedge()
	c.t.budgets.refund(hb)
}

// unsentHedgeRecovering is unsentHedge for a copy that panicked, on the
// copy's goroutine, once its panic was recovered: a panic of a
// SharedBudget's Deposit as it gives back is dropped, so that the copy's
// own goes on to the caller (see hedgeRun.panicked) rather than this one
// end the process.
func (c *call) unsentHedgeRecovering(hb *hostBudget) {
	defer func() { _ = recover() }()
	c.unsentHedge(hb)
}

// copyBody returns the body of a copy of areq: none, a reader of the bytes
// of a body in memory (see memoryBody), taken by launchCopy, one from the
// GetBody of src (the caller's), or, for a body without GetBody, its
// capture once the attempt has sent it whole (a copy whose body is still being sent is not sent);
// sent as a retry's body is (see sendable): one in memory as it is, in one
// write with the headers, as the attempt's. GetBody, which may share one
// source among its bodies, is called only once the body made before, the
// attempt's or an earlier copy's, was sent (see run.nextBody).
func (c *call) copyBody(run *hedgeRun, areq, src *http.Request) (io.ReadCloser, error) {
	if !hasBody(areq) {
		return areq.Body, nil
	}
	var b io.ReadCloser
	if src.GetBody == nil {
		var ok bool
		if b, ok = c.capture.whole(); !ok {
			return nil, errBodyNotReplayable
		}
	} else if c.mem.ok() {
		if run.memErr != nil {
			return nil, run.memErr
		}
		// net/http's own resend of the copy reads these bytes, not the
		// caller's reader (see memoryBytes.getBody).
		areq.GetBody = run.mem.getBody()
		return run.mem.open(), nil
	} else if run.tracks {
		return run.nextBody(src)
	} else {
		var err error
		if b, err = getBody(src); err != nil {
			return nil, err
		}
	}
	return sendable(b, src.ContentLength), nil
}

// trackBody readies run, a hedged attempt's, for a request whose GetBody
// may hand out one source rewound (a file seeked back to its start), which
// a plain client calls only once the body was sent (a 307's): the
// attempt's body, first's, is watched (see checkedBody.sent), and no copy
// calls GetBody while it is still read (see nextBody). A body in memory
// is not: copies read its bytes, not GetBody (see memoryBody).
func (c *call) trackBody(run *hedgeRun, areq *http.Request, first *hedgeCopy) {
	if !hasBody(areq) || c.req.GetBody == nil || c.mem.ok() {
		return
	}
	cb, ok := areq.Body.(*checkedBody)
	if !ok {
		cb = &checkedBody{rc: areq.Body, want: areq.ContentLength}
		first.req.Body = cb
	}
	run.body, run.tracks = cb, true
	run.attemptCtx, run.getBody = first.req.Context(), c.req.GetBody
}

// nextBody returns the body of a copy from src's GetBody, which may share
// one source among the bodies it makes (see call.trackBody): only once
// the body made before it, the attempt's or an earlier copy's, was sent
// (see checkedBody.sent), or, when its reader has not begun to read it,
// once the copy took it over (see checkedBody.takeOverUnread), and not
// once the retry loop took the body back (see sealBody), nor after GetBody
// failed to renew the attempt's body (see checkedBody.renewFailed). Else it returns
// errBodyNotReplayable: the copy is
// not sent, and gives back what it spent, as a copy of a captured body
// still being sent. The copy's body is the run's body from before GetBody
// is called, without run's lock (GetBody is the caller's code, which may
// take its time), and counts as read while GetBody runs: a retry's
// GetBody waits for it, not the end of the call. A Read of the body taken
// over that begins meanwhile waits for that GetBody to return (see
// getting), and reads the body given back when it failed. Of unknown
// length, the copy's body must be as long as the body made before it, as
// a retry's must (see checkedBody.replayLength): a careless GetBody that
// hands out the body the attempt drained does not send the copy empty.
func (run *hedgeRun) nextBody(src *http.Request) (io.ReadCloser, error) {
	run.getMu.Lock()
	var taken bool
	if !run.sealed && !run.body.sent() {
		taken = run.body.takeOverUnread()
	}
	if run.sealed || !run.body.sent() && !taken || run.body.renewFailed() != nil {
		run.getMu.Unlock()
		return nil, errBodyNotReplayable
	}
	cb := &checkedBody{want: src.ContentLength, replay: run.body.replayLength()}
	var getting chan struct{}
	if taken {
		cb.took = run.body
		getting = make(chan struct{})
		run.getting = getting
		cb.took.by.Store(run) // its reader waits for getting (see reclaim)
	}
	cb.use.Store(bodyHeld) // no later copy takes it over (see giveBack)
	cb.watch.reading.Store(true)
	run.body = cb
	run.getMu.Unlock()
	made := false
	defer func() {
		if !made {
			cb.closed.Store(true) // no body (GetBody failed or panicked): none to wait for
		}
		cb.watch.reading.Store(false)
		cb.wake()
		if getting != nil {
			// After giveBack: a Read woken finds the body given back.
			run.getMu.Lock()
			run.getting = nil
			run.getMu.Unlock()
			close(getting)
		}
	}()
	b, err := getBody(src)
	if err != nil {
		run.giveBack(cb)
		return nil, err
	}
	cb.rc, made = b, true
	return cb, nil
}

// reclaim takes body, which a copy took over before it was read (see
// nextBody), back for its reader, whose Read just began, and reports
// whether it did: when the copy has not begun to read its own body (its
// dial hangs, a black hole) and the retry loop has not taken the run's
// body (see sealBody). The copy's body is detached: its Read fails without
// reading the source. The attempt, whose connection was ready first, sends
// the body as without hedging (TestHedgingTakenOverBodyBackFromHungCopy),
// rather than fail and wait for the copy. While the copy's GetBody runs,
// which may rewind the source (TestHedgingNoReclaimWhileCopysGetBodyRuns),
// it returns the channel closed once GetBody returned, for the Read to
// wait for and look again (see checkedBody.beginRead): a copy whose
// GetBody fails gives the body back
// (TestHedgingTakenOverBodyBackFromCopysFailedGetBody). Not once the
// attempt's context is done: the attempt was decided, or the call ended.
func (run *hedgeRun) reclaim(body *checkedBody) (bool, <-chan struct{}) {
	run.getMu.Lock()
	defer run.getMu.Unlock()
	cb := run.body
	if run.sealed || cb == nil || cb.took != body {
		return false, nil
	}
	if run.attemptCtx.Err() != nil {
		// The attempt was decided, by the panic of the copy's GetBody
		// for one (TestHedgingCopyGetBodyPanicKeepsTakenOverBody), or
		// the call ended: its body is not sent after that.
		return false, nil
	}
	if run.getting != nil {
		return false, run.getting
	}
	if !cb.use.CompareAndSwap(bodyHeld, bodyLost) {
		return false, nil
	}
	cb.detached.Store(true)
	if !body.use.CompareAndSwap(bodyTaken, bodyRead) {
		return false, nil // not reached: only giveBack, under getMu, or this Read change it
	}
	run.body = body
	return true, nil
}

// giveBack gives the body that body, a copy's that failed or never reached
// the wire, took over before it was read (see nextBody) back to its
// reader, when no Read of either began meanwhile: the attempt whose body
// a copy refused by a layer, or failed before it sent its body (a refused
// dial), took over sends it still, as without hedging
// (TestHedgingRefusedCopyLeavesUnreadBody,
// TestHedgingFailedCopyLeavesUnreadBody). The copy's body is detached
// first: a Read of it after fails. Not once the retry loop took the run's
// body (see sealBody): the retry's GetBody waits for the copy's body, not
// for the one given back, whose Read would read the source on
// (TestHedgingTakenOverBodyNotBackAfterRetryBegan,
// TestHedgingFailedCopyKeepsBodyAfterRetryBegan); it fails instead (see
// reclaim).
func (run *hedgeRun) giveBack(body io.ReadCloser) {
	cb, ok := body.(*checkedBody)
	if !ok || cb.took == nil {
		return
	}
	run.getMu.Lock()
	defer run.getMu.Unlock()
	if run.body != cb || !cb.use.CompareAndSwap(bodyHeld, bodyLost) {
		return
	}
	cb.detached.Store(true)
	if !run.sealed && cb.took.giveBack() {
		// A later copy may take it over again: its reader takes it
		// back only once that copy's GetBody, which may rewind the
		// source, has returned (see reclaim).
		cb.took.by.Store(nil)
		run.body = cb.took
	}
}

// sealBody ends the copies' calls of GetBody once the attempt returned,
// and returns the body made last, for which a retry's GetBody waits (see
// replayBody.next): a copy launched after it calls GetBody no more.
func (run *hedgeRun) sealBody() *checkedBody {
	run.getMu.Lock()
	defer run.getMu.Unlock()
	run.sealed = true
	return run.body
}

// finish records copy k's result. It returns the index of the copy that
// decides the attempt when this result settles it: k for an answer that
// is not retryable; when the last copy running has failed, all have, and
// the one allFailed picks decides (no more copies are sent then: the
// retry loop takes over); when the attempt itself has failed, or a copy
// that reached the base, no more copies are sent either. A 409 to a copy
// of a keyed write is the server saying that another copy holds the key:
// it is no answer, and stops no copy. It returns -1
// otherwise; a copy that ends after another won is closed here. A copy
// of a keyed write that failed after it reached the base marks the run
// lost (see settle), unless its own trace, or its error, proves that its
// request never left (see call.unsentBy): a refused dial is no such
// proof after net/http wrote the copy on a reused connection that died. A
// copy of a keyed write that gets a success that is
// no replay, its body read whole or not, once another copy won with one,
// is a second create for one key: the host is forgotten as one that
// honors keys (see ignoresKeys), after the winner's answer was learned
// from (see call.learnKeys).
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
		c.t.cls.classify(cp.st, cp.req, resp, err, time.Now)
	}
	if k > 0 && cp.st.declined {
		// A copy the base declined was never sent (see unwire).
		reached = false
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	cp.resp, cp.err, cp.done = resp, err, true
	run.running--
	if run.keyed && err != nil && reached && !c.unsentBy(cp.trace, cp.st, err) {
		run.lost = true
	}
	if run.winner >= 0 {
		if run.created && (created(resp) || created(cp.st.cut)) {
			run.twice = true
			if run.told {
				c.t.keys.forget(cp.req.URL.Scheme, cp.req.URL.Host) // the copy's: the call may have returned
			}
		}
		cp.discard()
		return -1
	}
	held := run.keyed && resp != nil && resp.StatusCode == http.StatusConflict
	answered := resp != nil && !cp.st.class.Retryable() && !held
	if !answered {
		if run.running > 0 {
			if (k == 0 || reached && !held) && !errors.Is(err, errBodyDetached) {
				// The attempt itself failed: the copies in flight
				// get one delay more to answer (see wait), and no
				// new one is sent, which would be a retry without
				// its backoff. So does a copy that reached the
				// base: a next copy would be that retry (of a 429,
				// inside the wait it asked for). One that never
				// did (refused by a layer) says nothing of the host,
				// nor does a copy's 409 while another copy holds the
				// key: a next copy, sent once the write is done,
				// gets its stored answer. An attempt whose body a
				// copy took over before it began to read it (see
				// nextBody) says nothing of the host either.
				run.stopped = true
				if run.timer != nil {
					run.timer.Stop()
				}
			}
			return -1 // another copy may still answer
		}
		k = run.allFailed(k, c.cfg.maxRetryAfter)
	}
	run.decide(k)
	run.created = run.keyed && created(run.copies[k].resp)
	return k
}

// allFailed returns the copy whose result is the attempt's when every copy
// failed, last being the one that ended last, as the attempt would have
// failed without hedging: the first copy sent that got a response (the
// attempt's own when it got one), which the retry loop returns once it
// stops, else the first that failed with an error (but an attempt whose
// body a copy took over, and that never reached the host: see
// bodyTakenOnly; its error only when no copy sent failed). Of the responses, the
// one that asks for the longest wait (a 429's Retry-After, a quota's
// reset) decides, the first of them on a tie: the retry waits as long as
// the server asked any copy to, and is not sent inside the pause it asked
// for after the backoff of a sibling's 503 without one (with
// WithoutRateLimit, no pause of the rate limiter holds it). A 503's wait
// past maxWait (the call's WithMaxRetryAfter) counts as none: the call
// would not wait for it but return at once, and the rate limiter pauses
// nothing for it (see rateLimiter.update); a sibling's answer the call
// retries decides over it, as it would have without hedging. A keyed write's 409,
// which says that another copy holds the key, decides only when every copy
// sent got one, or no answer; the first 409 then. A copy that never
// reached the wire (refused by the rate limiter, the limit of attempts in
// flight or the breaker) is no copy sent: its refusal does not stand for
// the attempt's answer.
func (run *hedgeRun) allFailed(last int, maxWait time.Duration) int {
	firstErr, conflict, answer := -1, -1, -1
	taken := run.bodyTakenOnly()
	for i, cp := range run.copies {
		switch {
		case cp.resp != nil && !(run.keyed && cp.resp.StatusCode == http.StatusConflict):
			if answer < 0 || longerWait(cp.st, run.copies[answer].st, maxWait) {
				answer = i
			}
		case cp.resp != nil:
			if conflict < 0 {
				conflict = i
			}
		case cp.err != nil && firstErr < 0 && (i == 0 && !taken || i > 0 && cp.st != nil && cp.st.reached):
			firstErr = i
		}
	}
	if firstErr < 0 && taken {
		firstErr = 0 // no copy sent failed: the attempt's error is all there is
	}
	switch {
	case answer >= 0:
		return answer
	case firstErr >= 0:
		if firstErr == 0 {
			run.tellRenewal()
		}
		return firstErr
	case conflict >= 0:
		return conflict
	}
	return last
}

// bodyTakenOnly reports whether the attempt itself failed only because a
// copy took its body over before it read any, and was still sending it
// (errBodyDetached, with no cause of its own: see checkedBody.cut): the
// attempt never reached the host, and its error says nothing of it; a
// copy sent that failed tells what the host did (see allFailed). A Read
// cut by the caller's cancel, or by a renewal whose GetBody failed (see
// renew), has a cause, which decides. run.mu is held.
func (run *hedgeRun) bodyTakenOnly() bool {
	a := run.copies[0]
	cb, ok := a.req.Body.(*checkedBody)
	return run.tracks && ok && a.err != nil && errors.Is(a.err, errBodyDetached) && cb.cut.Load() == nil
}

// tellRenewal adds to the error of the attempt itself, which decides the
// run as every copy failed (see allFailed), that of the first copy sent
// that failed, when the attempt's Read failed as GetBody failed to renew
// its body (see renew): that failure ends the call, and stays its cause
// (StopBodyNotReplayable), but the copy sent the body, and what it met (a
// reset) is what the host did with the request; errors.Is and errors.As
// find both. A copy's timeout is added as its text only, as beforeCancel
// adds one: the call did not end on it, and wrapped, it made the call's
// error a timeout (os.IsTimeout, context.DeadlineExceeded), which the
// retry loop then flattens whole, GetBody's error with it, when the
// caller cancels (TestHedgingRenewFailureCopyTimedOut). run.mu is held.
func (run *hedgeRun) tellRenewal() {
	a := run.copies[0]
	cb, ok := a.req.Body.(*checkedBody)
	if !run.tracks || !ok || cb.renewFailed() == nil {
		return
	}
	for _, cp := range run.copies[1:] {
		if cp.err != nil && cp.st != nil && cp.st.reached {
			cerr := cp.err
			if isTimeout(cerr) {
				cerr = errors.New(redactRequestError(cerr, cp.req).Error())
			}
			a.err = fmt.Errorf("%w; hedged copy %d: %w", a.err, cp.st.hedge, cerr)
			return
		}
	}
}

// longerWait reports whether the answer of copy a asks for a longer wait
// before a retry than that of copy b (none is no wait), of the waits
// believed with maxWait (see believedWait).
func longerWait(a, b *attemptState, maxWait time.Duration) bool {
	wa, oka := believedWait(a, maxWait)
	wb, okb := believedWait(b, maxWait)
	return oka && (!okb && wa > 0 || okb && wa > wb)
}

// believedWait returns the wait before a retry that the answer of st asks
// for, and reports whether it asks for one that is believed: a throttled
// answer's, or another's (a 503's) up to maxWait. A longer 503's wait is
// the host down, not out of quota: the call does not wait for it, and the
// rate limiter pauses nothing for it.
func believedWait(st *attemptState, maxWait time.Duration) (time.Duration, bool) {
	if !st.hasRetryAfter || st.class != Throttled && st.retryAfter > maxWait {
		return 0, false
	}
	return st.retryAfter, true
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
// -1 when another copy decided the attempt already: no caller waits for
// it any more, and the panic ends with the copy, written to the
// Transport's logger (see logLostPanic) with req, the copy's own request
// (nil when it had none yet).
func (run *hedgeRun) panicked(k int, p any, req *http.Request) (idx int) {
	defer func() {
		if idx < 0 {
			run.logLostPanic(p, req)
		}
	}()
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

// logLostPanic writes a record of p, the panic of a copy of run that no
// caller waits for (see panicked), at Error level: a base that panics
// once its request's context is canceled (a loser's) would otherwise hide
// its bug. Its text is made safe as the error of req, the copy's request
// (nil for none), is (see redactRequestError: URLs without query or user
// information, req's own query, user information put in its host by hand
// and credentials REDACTED, no control characters, bounded), for it may
// quote that request. It never panics: it runs on the copy's goroutine,
// which no caller waits for, where a panic of the logger's handler, or of
// fmt's printing of p (a value whose Error panics with such a value),
// would crash the process; the record is given up then.
func (run *hedgeRun) logLostPanic(p any, req *http.Request) {
	if run.logger == nil {
		return
	}
	defer func() { _ = recover() }()
	text := redactRequestError(errors.New(fmt.Sprint(p)), req).Error()
	run.logger.LogAttrs(context.Background(), slog.LevelError, "resilient: a hedged copy panicked after another decided the attempt",
		slog.String("panic", safeText(text, maxErrorText)))
}

// wait returns the index of the copy that decides the attempt, once the
// attempt itself failed with copies in flight: the first of them to decide
// it within patience (one hedging delay), and before the call's deadline
// or its caller's cancel. Past them, the attempt fails as it would have
// without them (see allFailed), and they are canceled: a copy that hangs
// (the slow tail hedging is for) must not hold a failure, and the retry
// that follows it, until the attempt's deadline, where the call without
// hedging would have retried at once; nor, its base deaf to its context,
// past the end of a call that a plain client, which sends no copy, would
// have returned. A copy of a keyed write that may have been sent then
// makes the run lost (see settle): the server may still hold its key when
// the retry comes.
func (run *hedgeRun) wait(c *call, patience time.Duration) int {
	if !c.deadline.IsZero() {
		patience = min(patience, c.deadline.Sub(c.t.clock.now()))
	}
	t := time.NewTimer(patience)
	defer t.Stop()
	select {
	case idx := <-run.results:
		return idx
	case <-t.C:
	case <-c.ctx.Done():
	case <-cancelOf(c.req):
	}
	run.mu.Lock()
	if run.winner >= 0 {
		// A copy decided the attempt as the timer fired: its index is
		// on its way.
		run.mu.Unlock()
		return <-run.results
	}
	if run.keyed && run.sentCopies() > 0 {
		run.lost = true
	}
	k := run.allFailed(0, c.cfg.maxRetryAfter)
	run.decide(k)
	run.mu.Unlock()
	return k
}

// abandon ends the run of an attempt whose own request panicked, or whose
// answer's Close did (see sendFirst): no copy is sent any more, those in
// flight are canceled, and the answers of those that ended are closed, for
// no caller will read them (a Close that panics too is dropped). It
// returns the number of copies sent.
func (run *hedgeRun) abandon() int {
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
			cp.discardQuietly() // the panic that goes to the caller is the first
		} else {
			cp.cancel(nil)
		}
	}
	return run.sentCopies()
}

// discard closes the response of a copy that lost, its context canceled
// first. Its body is not drained: settle discards on the caller's
// goroutine, where a drain of a body that stalls would hold the winner's
// answer (up to maxReadWait), and the lock of the run with it. The
// connection of a body not read to its end is closed rather than reused.
func (cp *hedgeCopy) discard() {
	cp.cancel(errHedgeLost)
	if resp := cp.resp; resp != nil {
		cp.resp = nil // not closed again after a Close that panics (see settle)
		resp.Body.Close()
	}
}

// discardQuietly is discard for settle's panic path: a Close that panics
// too is dropped, for the panic that goes to the caller is the first.
func (cp *hedgeCopy) discardQuietly() {
	defer func() { recover() }()
	cp.discard()
}

// settle makes copy idx the attempt's result: its state goes into st, the
// other copies are closed as they end, and the host's latency is recorded.
func (c *call) settle(run *hedgeRun, idx int, st *attemptState, hb *hostBudget, start time.Time) (*http.Response, error) {
	run.mu.Lock()
	locked := true
	defer func() {
		if locked {
			// A loser's body panicked as it was closed (the base's
			// code): the panic goes to the caller, its Report counting
			// the copies sent, and the copies still in flight end,
			// and close their answers, as after any other settle (see
			// finish). The caller gets no answer: those of the copies
			// that ended, the winner's included, are closed too.
			for _, cp := range run.copies {
				if cp.done {
					cp.discardQuietly()
				}
			}
			sent := run.sentCopies()
			run.mu.Unlock()
			c.countHedges(sent)
		}
	}()
	w := run.copies[idx]
	for i, cp := range run.copies {
		if i != idx && cp.done {
			if cp.st != nil && cp.st.cutRetried {
				// A header block cut short is retried once a call,
				// whichever copy met it (see cutHeaders).
				c.cutRetried = true
			}
			if run.keyed && cp.st != nil && created(cp.st.cut) {
				// A success whose body broke on its way (see
				// WithBufferedResponse): the write was processed,
				// as after an attempt cut (see call.learnKeys).
				c.processed = true
			}
			if run.keyed && cp.resp != nil && cp.st.class.Retryable() && !refusedUnprocessed(cp.st, cp.resp) {
				// A failure answered that does not prove the write
				// unprocessed (a 503), which lost to another copy's
				// (a 429 that asks for a longer wait: see allFailed):
				// the server may have processed it, as the retry loop
				// notes of the attempt's own (see answeredUnproven).
				c.answeredUnproven = true
				if !cp.st.platform && noAnswerBehind(cp.resp.StatusCode, cp.st.apiErr) {
					c.lost = true // a gateway's: the server may still hold the key
				}
			}
			cp.discard()
		}
	}
	sent := run.sentCopies() // the attempt is decided: no copy is sent any more (see wire)
	lost := run.lost
	// The trace of the copy that decides is the attempt's: it tells
	// whether that copy's error proves its request never left (see
	// call.provablyUnsent).
	c.trace = w.trace
	if lost {
		// A copy got no answer after it may have been sent, whichever
		// copy decides: the server may still hold the key, and a 409
		// to a retry says so (see keyHeld), as after an attempt lost
		// without hedging.
		c.lost = true
	}
	locked = false
	run.mu.Unlock()
	c.countHedges(sent) // a panic's Report counts them too
	if w.panicked {
		w.cancel(nil)
		panic(w.panicVal) // the copy's, on the caller's goroutine
	}
	// The attempt was sent once its waits, for the rate limiter and a
	// slot of its host, were over: the host's latency runs from then, as
	// the hedging delay does (see wire).
	sentAt := start.Add(st.queued())
	if idx != 0 && w.resp != nil && w.resp.Request != nil && w.resp.Request.URL == w.req.URL {
		// The request of the copy, or one the layers below made of it
		// (their copies share its URL), is a clone of the attempt's
		// (see launchCopy): the response is the attempt's, which the
		// retry loop tells by its URL, the caller's, and gives the
		// caller's request.
		w.resp.Request = run.copies[0].req
	}
	if idx != 0 {
		// Those waits came before any copy: they are part of the
		// attempt's time whichever copy decides it, with the copy's
		// own (see Attempt.LocalWait).
		localWait, slotWait, writes := st.localWait, st.slotWait, st.writes
		*st = *w.st
		st.localWait += localWait
		st.slotWait += slotWait
		st.writes = writes // the pooled state's, for its next attempts
	}
	st.hedges = sent
	// The attempt's result may be that of a copy that never reached the
	// server (a refused dial) while another copy, lost, may have been
	// processed: the retry loop must not take the attempt for unsent
	// (see call.run, which drops the response held from an earlier
	// attempt then).
	st.copyLost = lost
	if w.resp != nil && w.resp.Body == http.NoBody {
		// No body to end the copy's context: it ends now, and the
		// caller gets http.NoBody, as from the base.
		hb.latencies().record(latencySince(sentAt, st))
		w.cancel(nil)
	} else if w.resp != nil {
		// The attempt's latency, from its first copy's send: a slow
		// answer cut short by a copy still counts as slow, so the
		// quantile does not drift down to the copies' own latency.
		hb.latencies().record(latencySince(sentAt, st))
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

// latencySince returns the latency of attempt st, sent at sentAt: the time
// to its response's headers, which the adaptive hedging delay waits for.
// For an error, whose body the classifier read for its envelope before the
// attempt returned, or an answer that waited for the copies in flight
// (see hedgeRun.wait), that is when its headers came (see
// attemptState.answeredAfter); otherwise the attempt was answered just now.
func latencySince(sentAt time.Time, st *attemptState) time.Duration {
	if st.answeredAfter > 0 {
		return st.start.Add(st.answeredAfter).Sub(sentAt)
	}
	return time.Since(sentAt)
}

// countHedges counts the copies of an attempt sent, in the call's Report
// and among its requests sent (see AttemptInfo.ResendCount).
func (c *call) countHedges(sent int) {
	c.hedges += sent
	c.sent += sent
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
