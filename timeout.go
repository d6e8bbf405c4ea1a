package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// maxReadWait bounds the time the Transport spends reading a response body
// itself: the peek at an error envelope, and the drain of a response it
// retries past. A body that stalls longer is cut there (and its connection
// closed), whatever the attempt's own deadline.
const maxReadWait = 2 * time.Second

// deadlineMiddleware runs each attempt under its deadline: the earliest of
// the attempt timeout (WithAttemptTimeout), the end of the call's budget
// (WithMaxElapsed) and the context's deadline. The context's own deadline
// is left to the base, which honors it; the middleware sets a deadline of
// its own only when the attempt timeout or the budget ends first (fired by
// the chain's deadlineWatch: no runtime timer per attempt).
//
// The deadline runs until the Transport hands the response to the caller, so
// that what the Transport reads of the body itself (an error envelope, a
// drain) is bounded by it too; once handed over, the body is the caller's
// and no deadline of the attempt applies to it any longer.
//
// Through the Transport, the attempt timeout is the call's (see
// WithCallOptions); attemptTimeout applies to requests sent through the
// middleware directly.
func deadlineMiddleware(attemptTimeout, maxElapsed time.Duration) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &attemptDeadline{next: hopTo(next), d: attemptTimeout, budget: maxElapsed}
	}
}

// attemptDeadline runs each attempt under its deadline. What an attempt
// under a deadline costs, beyond the copy of its request with its own
// context: one allocation, its deadlineBody, which is also its context when
// the caller's context can never be canceled; and a slot of the chain's
// deadlineWatch, which fires every deadline with one timer. When the retry
// loop copies an attempt's request anyway, it readies the deadlineBody in
// the copy's context beforehand (see readyDeadline): the middleware then
// arms that one, and the attempt costs no second copy.
type attemptDeadline struct {
	next   hop
	d      time.Duration // the attempt timeout; 0 for none
	budget time.Duration // the Transport's WithMaxElapsed; 0 for none
	watch  deadlineWatch
}

func (t *attemptDeadline) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTripAttempt(req, nil)
}

func (t *attemptDeadline) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	parent := req.Context()
	var db *deadlineBody // the deadline the retry loop readied in req's context; nil for none
	if st != nil && st.prepared != nil && st.prepared.ctx == parent {
		db = st.prepared
		parent = db.own.parent
	}
	var (
		now     time.Time
		end     time.Time
		timeout time.Duration // the attempt timeout, when it ends first; 0 when the budget does
	)
	d := t.d
	if st != nil && st.callCfg != nil {
		d = st.callCfg.attemptTimeout // the call's (WithCallOptions)
	}
	if d > 0 {
		now = attemptClock(st)
		end, timeout = now.Add(d), d
	}
	if st != nil && !st.budget.IsZero() && (end.IsZero() || st.budget.Before(end)) {
		end, timeout = st.budget, 0
	}
	if db == nil {
		// (A readied deadline always has an end, before the context's
		// if any: see readyDeadline.)
		if end.IsZero() {
			return t.next.roundTrip(req, st)
		}
		if d, ok := contextDeadline(parent, st); ok && !d.After(end) {
			return t.next.roundTrip(req, st) // the context ends first: the base sees to it
		}
	}
	if now.IsZero() {
		now = attemptClock(st)
	}
	if db == nil {
		db = new(deadlineBody)
		req = db.copyRequest(req, db.init(parent, end))
	} else if db.ctx == &db.own {
		db.own.end = end // the attempt timeout starts now
	}
	db.timeout = timeout
	db.callers = t.callersOwn(st, timeout)
	t.watch.arm(db, now, end)
	if st != nil {
		st.armed = db
	}
	w := watchOf(req.Body)
	if w != nil {
		w.db.Store(db)
	}
	resp, err := t.next.roundTrip(req, st)
	readied := st != nil && st.prepared == db
	if err != nil {
		fired := !db.keep()
		if !readied {
			db.cancelWith(nil)
		} // else the retry loop releases it, once the layers above have read its context
		if fired && parent.Err() == nil {
			err = fmt.Errorf("%w: %w", db.cause(), err)
			if w != nil && w.heldUp() {
				// The transport was waiting for the caller's body, not
				// for the host: the caller's fault (see bodyWatch).
				// The classifier, below, took it for a timeout.
				err = &RequestError{Err: fmt.Errorf("%w: %w", errBodyStalled, err)}
				if st != nil && st.classified {
					st.class, st.neverSent = classifyErr(err)
				}
			}
		}
		return nil, err
	}
	if readied {
		st.prepared = nil // the body releases it now
	}
	db.rc = resp.Body
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection: hand it over now, and keep
		// it writable.
		db.keep()
		if w, ok := resp.Body.(io.Writer); ok {
			resp.Body = &deadlineRWBody{deadlineBody: db, w: w}
			return resp, nil
		}
	}
	resp.Body = db
	return resp, nil
}

// callersOwn reports whether the deadline of attempt st, the attempt
// timeout when timeout is not 0, else the call's budget, is one its call
// set tighter than the Transport's own (WithCallOptions): a cut by it is
// the caller's choice, which says nothing of the host (see
// attemptOutcome), as a cut by the caller's context's deadline.
func (t *attemptDeadline) callersOwn(st *attemptState, timeout time.Duration) bool {
	switch {
	case st == nil || st.callCfg == nil:
		return false
	case timeout > 0:
		return t.d == 0 || timeout < t.d
	}
	m := st.callCfg.maxElapsed
	return m > 0 && (t.budget == 0 || m < t.budget)
}

// init makes db the deadline of an attempt under parent that ends at end
// (zero when not known yet), and returns the attempt's context: db's own
// when parent can never be canceled, else one derived from parent. The
// deadline is not armed yet: see deadlineWatch.arm.
func (db *deadlineBody) init(parent context.Context, end time.Time) context.Context {
	db.own.parent = parent
	if parent.Done() == nil {
		// The caller's context is never canceled: the body is the
		// attempt's context too, with nothing to propagate.
		db.own.end = end
		db.ctx = &db.own
	} else {
		db.ctx, db.cancel = context.WithCancelCause(parent)
	}
	return db.ctx
}

// copyRequest returns a copy of req with ctx, kept in db, so that the copy
// and its deadline cost one allocation. (WithContext is inlined: the copy
// it makes stays on the stack.)
func (db *deadlineBody) copyRequest(req *http.Request, ctx context.Context) *http.Request {
	db.req = *req.WithContext(ctx)
	return &db.req
}

// deadlineReadied reports whether the deadline middleware arms a deadline
// of its own for attempt st under parent whenever the attempt is sent, so
// that the retry loop may ready it beforehand (see readyDeadline): when one
// of the attempt timeout and the call's budget applies, and the context has
// no deadline that could come first: none, or one after the budget, which
// the attempt's deadline never passes.
func deadlineReadied(parent context.Context, st *attemptState) bool {
	if st.budget.IsZero() && st.callCfg.attemptTimeout <= 0 {
		return false
	}
	dl, ok := contextDeadline(parent, st)
	return !ok || !st.budget.IsZero() && dl.After(st.budget)
}

// contextDeadline returns the deadline of parent, the context of attempt
// st's request. For an attempt of the retry loop (st not nil), it is the
// call's context's, which the loop read once: every context the loop gives
// an attempt derives from the call's without a deadline of its own (the
// write trace's, a hedged copy's, a readied deadline's parent), so that
// reading it again would only walk the caller's context once more.
func contextDeadline(parent context.Context, st *attemptState) (time.Time, bool) {
	if st != nil && st.callCfg != nil {
		return st.ctxDeadline, !st.ctxDeadline.IsZero()
	}
	return parent.Deadline()
}

// readyDeadline readies db as the deadline of attempt st under parent, for
// a request the retry loop copies anyway, and returns the context the copy
// is to carry; it records db in st.prepared, where the deadline middleware
// finds it and arms it instead of copying the request a second time. It
// is called only when deadlineReadied says the middleware arms a deadline.
// The attempt timeout, if any, starts when the middleware arms it, as for
// any request; until then the context's deadline is the budget's, or none.
func readyDeadline(db *deadlineBody, parent context.Context, st *attemptState) context.Context {
	st.prepared = db
	return db.init(parent, st.budget)
}

// releaseDeadline releases the deadline readied for attempt st once the
// attempt has ended without a response: whether the deadline middleware
// armed it (and kept it) or a layer above it refused the attempt. A
// response's body releases its own.
func releaseDeadline(st *attemptState, resp *http.Response) {
	if db := st.prepared; db != nil && resp == nil {
		st.prepared = nil
		db.cancelWith(nil)
	}
}

// attemptClock returns the start of the attempt of st, as the retry loop
// read it, or the clock's time when it did not.
func attemptClock(st *attemptState) time.Time {
	if st != nil && !st.start.IsZero() {
		return st.start
	}
	return time.Now()
}

// watchSlots is the number of attempts a deadlineWatch follows at once;
// beyond it, an attempt gets a timer of its own.
const watchSlots = 512

// deadlineWatch fires the deadlines of the attempts of one chain with a
// single timer, so that an attempt arms no runtime timer of its own (arming
// one, on an idle processor, wakes the network poller: a system call per
// attempt). An attempt takes a free slot (one compare-and-swap at a random
// place, so that goroutines on different cores rarely touch the same
// cache line) and gives it back when its deadline no longer matters. The
// timer is set to the earliest deadline it knows of, and reset only when an
// attempt's deadline comes before it: with deadlines of the same length
// (the call's budget, an attempt timeout), seldom. When it fires, it fires
// the deadlines that are due and sets itself to the earliest of the rest.
//
// Inside a testing/synctest bubble, whose clock is fake (its time.Now has
// no monotonic reading), and when every slot is taken, an attempt gets a
// timer of its own instead.
type deadlineWatch struct {
	slots [watchSlots]atomic.Pointer[deadlineBody]
	next  atomic.Int64              // the earliest deadline, as ns since epoch; 0: none
	epoch atomic.Pointer[time.Time] // the first attempt's start

	mu    sync.Mutex // serializes setting the timer and its sweeps
	armed int64      // what the timer is set for; 0: not set
	timer *time.Timer
}

// arm sees to it that db's deadline end fires, now being the attempt's
// start: the current time, or earlier by what the attempt waited below the
// rate limiter (a slot of WithMaxInFlight). A timer of the attempt's own is
// set from the clock, not from now, so that the wait does not push the
// deadline back. It takes no lock: it may try to, to set the timer, but
// never waits for it.
func (w *deadlineWatch) arm(db *deadlineBody, now, end time.Time) {
	db.slot = -1
	if now == now.Round(0) {
		// No monotonic reading: a synctest bubble's fake clock.
		db.timer = time.AfterFunc(time.Until(end), db.fire)
		return
	}
	epoch := w.epoch.Load()
	if epoch == nil {
		first := now // the first attempt's start
		w.epoch.CompareAndSwap(nil, &first)
		epoch = w.epoch.Load()
	}
	db.watch, db.end = w, int64(end.Sub(*epoch))
	i := rand.Uint32()
	for probe := range uint32(8) {
		j := (i + probe) % watchSlots
		if w.slots[j].Load() == nil && w.slots[j].CompareAndSwap(nil, db) {
			db.slot = int32(j)
			break
		}
	}
	if db.slot < 0 {
		db.watch, db.timer = nil, time.AfterFunc(time.Until(end), db.fire)
		return
	}
	// The slot is taken before next is read: a sweep that clears next
	// after this read scans the slots after it, and sees this one; one
	// that cleared it before makes this attempt lower it.
	if w.lower(db.end) {
		w.sync()
	}
}

// lower makes next at most end, and reports whether it changed it.
func (w *deadlineWatch) lower(end int64) bool {
	for {
		n := w.next.Load()
		if n != 0 && n <= end {
			return false
		}
		if w.next.CompareAndSwap(n, end) {
			return true
		}
	}
}

// sync sets the timer to next, unless another goroutine holds the lock: that
// one then does it before it returns, as this one does, by checking next
// once more after unlocking.
func (w *deadlineWatch) sync() {
	for w.mu.TryLock() {
		target := w.next.Load()
		if target != 0 && target != w.armed {
			d := time.Duration(target - int64(time.Since(*w.epoch.Load())))
			if w.timer == nil {
				// The timer holds the watch weakly: set for the call's
				// budget (minutes), it would otherwise keep the chain and
				// its base alive that long after their last call (a
				// Transport made per request).
				// Once the watch is garbage, its timer is stopped: the
				// runtime's heap of timers holds it no longer either.
				wp := weak.Make(w)
				w.timer = time.AfterFunc(d, func() {
					if w := wp.Value(); w != nil {
						w.sweep()
					}
				})
				runtime.AddCleanup(w, stopTimer, w.timer)
			} else {
				w.timer.Reset(d)
			}
			w.armed = target
		}
		w.mu.Unlock()
		if w.next.Load() == target {
			return
		}
	}
}

// stopTimer stops t; it is the cleanup of a deadlineWatch's timer.
func stopTimer(t *time.Timer) { t.Stop() }

// sweep runs when the timer fires: it fires the deadlines that are due,
// and sets the timer to the earliest of the others.
func (w *deadlineWatch) sweep() {
	for !w.mu.TryLock() {
		runtime.Gosched() // an attempt is setting the timer
	}
	w.armed = 0
	w.next.Store(0) // before the scan: see arm
	at := int64(time.Since(*w.epoch.Load()))
	var due []*deadlineBody
	var earliest int64
	for i := range w.slots {
		db := w.slots[i].Load()
		switch {
		case db == nil:
		case db.end <= at:
			if w.slots[i].CompareAndSwap(db, nil) {
				due = append(due, db)
			}
		case earliest == 0 || db.end < earliest:
			earliest = db.end
		}
	}
	if earliest != 0 {
		w.lower(earliest)
	}
	w.mu.Unlock()
	w.sync()
	for _, db := range due {
		db.fire()
	}
}

// release gives db's slot back: its deadline no longer matters.
func (db *deadlineBody) release() {
	if db.watch != nil {
		db.watch.slots[db.slot].CompareAndSwap(db, nil)
	} else if db.timer != nil {
		db.timer.Stop()
	}
}

// errBudgetSpent is the cause of an attempt cut because the call's budget
// (WithMaxElapsed) ran out.
var errBudgetSpent = fmt.Errorf("%w: the call's budget (WithMaxElapsed) is spent", ErrAttemptTimeout)

// errCallersLimit marks the cause of an attempt cut by a limit its call set
// tighter than the Transport's (see attemptDeadline.callersOwn), which the
// breaker does not count.
var errCallersLimit = errors.New("a limit set for the call (WithCallOptions)")

// errCallersBudgetSpent is errBudgetSpent for a call's budget set tighter
// than the Transport's.
var errCallersBudgetSpent = fmt.Errorf("%w: %w", errBudgetSpent, errCallersLimit)

// States of a deadlineBody.
const (
	deadlineRunning int32 = iota // the timer may still fire
	deadlineKept                 // handed to the caller: the timer is stopped
	deadlineFired                // the timer fired: the attempt's context is canceled
)

// deadlineBody is the body of a response whose attempt ran under a timer.
// It releases the attempt's context when closed.
type deadlineBody struct {
	rc      io.ReadCloser
	timeout time.Duration // the attempt timeout that set the deadline; 0 for the call's budget
	state   atomic.Int32

	// What fires the deadline: a slot of a watch, or a timer of its own.
	watch   *deadlineWatch
	slot    int32
	callers bool  // the deadline is one the call set tighter than the Transport's (see callersOwn)
	end     int64 // the deadline, as ns since the watch's epoch
	timer   *time.Timer

	// The attempt's context, ctx: own when the caller's context
	// (own.parent) is never canceled, else one derived from it with
	// cancel. (Without a second copy of the parent, a deadlineBody is 512
	// bytes: the largest size class whose objects need no malloc header.)
	ctx    context.Context
	own    attemptCtx
	cancel context.CancelCauseFunc

	req http.Request // the attempt's request, when copied with it (see copyRequest)
}

// cause returns the error of the deadline: ErrAttemptTimeout with the
// attempt timeout, or errBudgetSpent; marked with errCallersLimit when the
// call set it tighter than the Transport's.
func (b *deadlineBody) cause() error {
	switch {
	case b.timeout > 0 && b.callers:
		return fmt.Errorf("%w after %v: %w", ErrAttemptTimeout, b.timeout, errCallersLimit)
	case b.timeout > 0:
		return fmt.Errorf("%w after %v", ErrAttemptTimeout, b.timeout)
	case b.callers:
		return errCallersBudgetSpent
	}
	return errBudgetSpent
}

// cancelWith cancels the attempt's context: with cause when the deadline
// cut it, with nil when it is released.
func (b *deadlineBody) cancelWith(cause error) {
	if b.cancel != nil {
		b.cancel(cause)
		return
	}
	if cause != nil {
		b.own.cancel(context.DeadlineExceeded)
	} else {
		b.own.cancel(context.Canceled)
	}
}

func (b *deadlineBody) fire() {
	if b.state.CompareAndSwap(deadlineRunning, deadlineFired) {
		b.cancelWith(b.cause())
	}
}

// keep stops the timer for good, and reports whether it did so before the
// timer fired.
func (b *deadlineBody) keep() bool {
	if b.state.CompareAndSwap(deadlineRunning, deadlineKept) {
		b.release()
		return true
	}
	return b.state.Load() == deadlineKept
}

// abort ends the attempt now, as its deadline would.
func (b *deadlineBody) abort(cause error) {
	if b.state.CompareAndSwap(deadlineRunning, deadlineFired) {
		b.release()
		b.cancelWith(cause)
	}
}

// Read reads the body. At its end, the attempt's context derived from a
// caller's cancelable one is released, as net/http releases its own there:
// a caller that reads a body whole and drops it unclosed leaves nothing
// registered with its context.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF && b.cancel != nil {
		b.cancel(nil)
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.rc.Close()
	if b.state.CompareAndSwap(deadlineRunning, deadlineKept) {
		b.release()
	}
	b.cancelWith(nil)
	return err
}

// deadlineRWBody is the body of a 101 Switching Protocols response: the
// upgraded connection, which stays writable.
type deadlineRWBody struct {
	*deadlineBody
	w io.Writer
}

// Read reads the upgraded connection, whose end on the server's side leaves
// it writable: the attempt's context lives until it is closed.
func (b *deadlineRWBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *deadlineRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// handOver gives resp to the caller: the attempt's timer, if any, stops for
// good, whether the body is the deadline's own or a hedged copy's wrapper
// of it. When the timer had fired first, the attempt's context is canceled
// and the body cut: handOver then returns the timer's cause.
func handOver(resp *http.Response) error {
	body := resp.Body
	if c, ok := body.(*cancelOnClose); ok {
		body = c.ReadCloser
	}
	if db, ok := body.(*deadlineBody); ok && !db.keep() {
		return db.cause()
	}
	return nil
}

// attemptCtx is the context of an attempt under a deadline whose caller's
// context is never canceled (its Done is nil): it is done when the deadline
// fires (Err is context.DeadlineExceeded) or when the attempt's response is
// closed or dropped (context.Canceled). Its values are its parent's, and
// the attempt's write trace when it has one (see clientTraceKey). It costs
// no allocation of its own: it lives in the attempt's deadlineBody, and
// makes its Done channel only when asked for one.
//
// It implements the AfterFunc method that the context package looks for in
// a parent, so that a context derived from it (http.Transport derives one
// per request) is canceled with it without a goroutine of its own; the
// functions registered run synchronously when it is canceled, after its
// lock is released.
type attemptCtx struct {
	parent context.Context        // the caller's; its Done is nil when this context is the attempt's
	end    time.Time              // zero while not known: see readyDeadline
	trace  *httptrace.ClientTrace // the attempt's write trace; nil for none

	mu    sync.Mutex
	done  chan struct{} // made on demand
	err   error
	n     int      // functions registered with AfterFunc
	first func()   // the first of them (net/http registers one): no slice for it
	more  []func() // the others; nil entries, and a nil first, were stopped
}

func (c *attemptCtx) Deadline() (time.Time, bool) { return c.end, !c.end.IsZero() }

func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *attemptCtx) Value(key any) any {
	if c.trace != nil && key == clientTraceKey {
		return c.trace
	}
	return c.parent.Value(key)
}

// traceCtx is a context that carries an attempt's write trace over its
// parent, as httptrace.WithClientTrace would over a parent with no trace of
// its own, and the key the Transport stamped on it, when it is the key of
// an unproven write (see stampedKey), without an allocation of its own: it
// lives in the attempt's attemptExtras.
type traceCtx struct {
	context.Context
	trace   *httptrace.ClientTrace // nil for none: the parent's, if any
	stamped string                 // "" for none
}

func (c *traceCtx) Value(key any) any {
	switch {
	case key == clientTraceKey && c.trace != nil:
		return c.trace
	case key == stampedKey{} && c.stamped != "":
		return c.stamped
	}
	return c.Context.Value(key)
}

// AfterFunc registers f to run once c is done, as its parent's AfterFunc
// does when it has one: a context derived from c (the deadline's, or
// http.Transport's) then follows such a parent (an attemptCtx of a
// Transport above, a caller's own context) without a goroutine of its own,
// as it would follow the parent itself. A parent made by the context
// package is found through Value, before this method is looked for.
func (c *traceCtx) AfterFunc(f func()) (stop func() bool) {
	if a, ok := c.Context.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(c.Context, f)
}

// stampedKey is the context key under which an attempt of an unproven
// write (one whose host is not known to deduplicate by key) carries the
// idempotency key the Transport stamped on it. A Transport below it, given
// the attempt as its own call, reads it: that key is not the caller's, and
// implies nothing of the host (see Transport.idempotencyKey).
type stampedKey struct{}

// clientTraceKey is the key under which net/http/httptrace keeps a
// ClientTrace in a context, learned by asking a context that records it:
// an attemptCtx answers it with its write trace, which then costs no
// context of its own (see call.attemptRequest). It is set once, when the
// package is initialized.
var clientTraceKey = func() any {
	var p keyProbe
	httptrace.ContextClientTrace(&p)
	return p.key
}()

// keyProbe is a context that records the key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// AfterFunc arranges for f to run once c is done, and returns a function
// that unregisters it, reporting whether it did so before f ran.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// The context package calls AfterFunc with a lock held that f
		// takes: f may not run on this goroutine.
		go f()
		return func() bool { return false }
	}
	i := c.n
	c.n++
	if i == 0 {
		c.first = f
	} else {
		c.more = append(c.more, f)
	}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return false // cancel runs it, or ran it
		}
		slot := &c.first
		if i > 0 {
			slot = &c.more[i-1]
		}
		if *slot == nil {
			return false
		}
		*slot = nil
		return true
	}
}

// cancel makes c done with err, unless it is done already, and runs the
// functions registered with AfterFunc.
func (c *attemptCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	first, more := c.first, c.more
	c.first, c.more = nil, nil
	c.mu.Unlock()
	if first != nil {
		first()
	}
	for _, f := range more {
		if f != nil {
			f()
		}
	}
}

func (c *attemptCtx) String() string { return "resilient.attemptCtx" }

// errReadStalled is the cause given when a body the Transport reads itself
// stalls past maxReadWait.
var errReadStalled = fmt.Errorf("resilient: response body stalled for %v", maxReadWait)

// abortAfter arranges for body to be cut if it is still being read by the
// Transport after d: through the context of a hedged copy's body, or the
// attempt's when the attempt runs under a timer (db, or the body itself
// when it is the timer's), else by closing it. A context comes first
// because closing does not cut every read: the Close of net/http's body of
// a gzip-encoded response waits for the Read in progress, which a server
// that stalls in the gzip header holds. The returned function disarms it.
func abortAfter(body io.ReadCloser, db *deadlineBody, d time.Duration) (stop func() bool) {
	var abort func()
	switch b := body.(type) {
	case *deadlineBody:
		db = b
	case *cancelOnClose:
		abort = func() { b.cancel(errReadStalled) }
	}
	switch {
	case abort != nil:
	case db != nil:
		abort = func() { db.abort(errReadStalled) }
	default:
		abort = func() { body.Close() }
	}
	return time.AfterFunc(d, abort).Stop
}
