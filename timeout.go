package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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
	if st != nil && st.prepared != nil && st.prepared.reqCtx() == parent {
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
	} else {
		db.own.end = end // the attempt timeout starts now
	}
	db.timeout = timeout
	db.callers = t.callersOwn(st, timeout)
	t.watch.arm(db, st, now, end)
	if st != nil {
		st.armed = db
	}
	w := watchOf(req.Body)
	if w != nil {
		w.db.Store(db)
	}
	returned := false
	defer db.releaseOnPanic(&returned) // open-coded: a flag, and about 50 instructions an attempt
	resp, err := t.next.roundTrip(req, st)
	returned = true
	readied := st != nil && st.prepared == db
	if err != nil {
		fired := !db.keep()
		if !readied {
			db.cancelWith(nil)
		} // else the retry loop releases it, once the layers above have read its context
		if fired && parent.Err() == nil {
			err = cutByDeadline(db.cause(), err)
			if w != nil && w.heldUp() {
				// The transport was waiting for the caller's body, not
				// for the host: the caller's fault (see bodyWatch).
				// The classifier, below, took it for a timeout.
				err = bodyStalled(req.Body, err)
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
	if resp.Body == http.NoBody {
		// No body to bound: the deadline ends here, and the caller
		// gets http.NoBody, as from the base.
		db.keep()
		db.cancelWith(nil)
		return resp, nil
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
// set tighter than the Transport's own (WithCallOptions; the time
// WithMaxElapsedSpent counted as spent before it aside): a cut by it is
// the caller's choice, which says nothing of the host (see
// attemptOutcome), as a cut by the caller's context's deadline.
func (t *attemptDeadline) callersOwn(st *attemptState, timeout time.Duration) bool {
	switch {
	case st == nil || st.callCfg == nil:
		return false
	case timeout > 0:
		return t.d == 0 || timeout < t.d
	}
	// What WithMaxElapsedSpent counted as spent before the call is not a
	// limit the caller set: the Transport's budget, partly spent, is
	// not tighter than the Transport's. (Added only when m is less: a
	// call without options pays nothing.)
	m := st.callCfg.maxElapsed
	return m > 0 && (t.budget == 0 || m < t.budget && m+st.callCfg.elapsedSpent < t.budget)
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
// armed it (and kept it) or a layer above it refused the attempt, or
// panicked (resp nil). A response's body releases its own.
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

// cutByDeadline returns the error of an attempt whose base failed with err
// after the attempt's deadline, whose error is cause, fired: cause wrapping
// err, or err alone when it is cause already (net/http returns the cause of
// the request's context). The context.Canceled that err may hold (a base
// that returns its context's Err, when the caller's context can be
// canceled: the deadline canceled the attempt's context derived from it)
// is the deadline's, not the caller's cancel: errors.Is does not find it
// (see uncanceledError).
func cutByDeadline(cause, err error) error {
	if errors.Is(err, context.Canceled) {
		err = &uncanceledError{err}
	}
	if err.Error() == cause.Error() {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// uncanceledError is err, an error of an attempt cut by its deadline, for
// errors.Is and errors.As, except that it is never context.Canceled: the
// cancel that err tells of is the deadline's, which would otherwise tell a
// caller that it canceled the call itself.
type uncanceledError struct{ err error }

func (e *uncanceledError) Error() string { return e.err.Error() }

func (e *uncanceledError) Is(target error) bool {
	return target != context.Canceled && errors.Is(e.err, target)
}

func (e *uncanceledError) As(target any) bool { return errors.As(e.err, target) }

// Timeout reports whether err is, or wraps, a timeout.
func (e *uncanceledError) Timeout() bool { return isTimeout(e.err) }

// errBudgetSpent is the cause of an attempt cut because the call's budget
// (WithMaxElapsed) ran out.
var errBudgetSpent error = &timeoutCause{fmt.Errorf("%w: the call's budget (WithMaxElapsed) is spent", ErrAttemptTimeout)}

// budgetSpentContext returns ctx, which is not done, done with
// errBudgetSpent as its cause: the context of a call whose budget
// WithMaxElapsedSpent spent before it, which so ends before its first
// attempt (see call.run), as a call whose context is done does, no layer
// of the chain called.
func budgetSpentContext(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	cancel(errBudgetSpent)
	return ctx
}

// timeoutCause is the cause of an attempt cut by its deadline (see
// deadlineBody.cause): err, a timeout itself for os.IsTimeout, which looks
// at the error it is given only. It is the cause of the attempt's context,
// which net/http returns as the error of a read of the response's body
// that the cut ended (a peek cut, a body handed over cut): a body cut by a
// plain client's Timeout or its context's deadline fails with a timeout.
type timeoutCause struct{ err error }

func (e *timeoutCause) Error() string { return e.err.Error() }
func (e *timeoutCause) Unwrap() error { return e.err }
func (e *timeoutCause) Timeout() bool { return true }

// errCallersLimit marks the cause of an attempt cut by a limit its call set
// tighter than the Transport's (see attemptDeadline.callersOwn), which the
// breaker does not count.
var errCallersLimit = errors.New("a limit set for the call (WithCallOptions)")

// errCallersBudgetSpent is errBudgetSpent for a call's budget set tighter
// than the Transport's.
var errCallersBudgetSpent error = &timeoutCause{fmt.Errorf("%w: %w", errBudgetSpent, errCallersLimit)}

// errReadStalled is the cause given when a body the Transport reads itself
// stalls past maxReadWait. It is a timeout, and context.DeadlineExceeded
// for errors.Is, as the cut of a read by a deadline is: net/http returns
// it as the error of the body's read when the caller's context can be
// canceled (the attempt's context is canceled with it as its cause),
// where it returns context.DeadlineExceeded otherwise (see cancelWith).
var errReadStalled error = &timeoutError{fmt.Sprintf("resilient: response body stalled for %v", maxReadWait)}

// abortAfter arranges for body to be cut if it is still being read by the
// Transport after d: through the context of a hedged copy's body, or the
// attempt's when the attempt runs under a timer (db, or the body itself
// when it is the timer's: its context, once its timer stopped, as for the
// body of a Transport below, New(New(base)), or one whose breaker
// observers ran), else by closing it. A context comes first
// because closing does not cut every read: the Close of net/http's body of
// a gzip-encoded response waits for the Read in progress, which a server
// that stalls in the gzip header holds. A read that a context cut does
// not end within closeGrace (a base's body that no context reaches: one
// that blocks, or trickles, whatever its request's context says) is cut by
// closing body then. The returned function disarms it, and reports
// whether it closed body: the reader may not close it again.
func abortAfter(body io.ReadCloser, db *deadlineBody, d time.Duration) (stop func() (closed bool)) {
	abort, byCtx := readAbort(body, db)
	s := &softCut{abort: abort, stage: cutAbort}
	if byCtx {
		s.body = body
	}
	s.mu.Lock()
	s.timer = time.AfterFunc(d, s.fire)
	s.mu.Unlock()
	return s.stop
}

// closeGrace is how long a read cut through a context may take to end
// before its body is closed under it (see abortAfter): net/http ends it at
// once.
const closeGrace = maxReadWait / 4

// readAbort returns the function that cuts a read of body, as abortAfter
// says, and whether it cuts it through a context (rather than by closing
// body).
func readAbort(body io.ReadCloser, db *deadlineBody) (abort func(), byCtx bool) {
	switch b := body.(type) {
	case *deadlineBody:
		if db == nil && b.state.Load() == deadlineKept {
			// Its timer stopped (for breaker observers' time, see
			// flushClosing, or by a Transport below that handed it
			// over): its context still cuts a read that its Close
			// would wait for.
			return func() { b.cancelWith(errReadStalled) }, true
		}
		if db == nil {
			db = b
		}
	case *cancelOnClose:
		return func() { b.cancel(errReadStalled) }, true
	}
	if db != nil {
		return func() { db.abort(errReadStalled) }, true
	}
	return func() { body.Close() }, false
}

// softAbortAfter is abortAfter for a read that the Transport may end early
// without harm, the peek at an error envelope: after half of d, the
// returned flag is set, and the read stops as its Read in progress returns,
// the body left to its reader as it is (a body that arrives slowly is not
// cut); a Read still in progress at d, a stall, is cut as abortAfter cuts
// it. The returned function disarms it, and reports whether it closed
// body.
func softAbortAfter(body io.ReadCloser, db *deadlineBody, d time.Duration) (enough *atomic.Bool, stop func() (closed bool)) {
	abort, byCtx := readAbort(body, db)
	s := &softCut{rest: d - d/2, abort: abort}
	if byCtx {
		s.body = body
	}
	s.mu.Lock()
	s.timer = time.AfterFunc(d/2, s.fire)
	s.mu.Unlock()
	return &s.enough, s.stop
}

// Stages of a softCut: what its timer does when it fires next.
const (
	cutEnough = iota // set enough
	cutAbort         // cut the read (see readAbort)
	cutClose         // close the body: the cut through a context did not end the read
)

// softCut is the timer of abortAfter and softAbortAfter.
type softCut struct {
	enough atomic.Bool
	rest   time.Duration // the wait from the first firing to the cut
	abort  func()
	body   io.ReadCloser // closed closeGrace after a cut through a context, if still read; nil when abort closes it

	mu     sync.Mutex // guards done, stage, closed and timer
	done   bool       // disarmed, or finished
	stage  int
	closed bool // body was closed by the cut, or is being closed (by abort, or at closeGrace)
	timer  *time.Timer
}

// fire sets enough at its first firing (softAbortAfter's) and rearms
// itself for the rest of the wait; at the next, the read stalled: it is
// cut, and, when the cut is a context's, the timer rearmed once more for
// closeGrace, at the end of which a read still in progress is cut by
// closing the body.
func (s *softCut) fire() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	switch s.stage {
	case cutEnough:
		s.enough.Store(true)
		s.stage = cutAbort
		s.timer.Reset(s.rest)
		s.mu.Unlock()
	case cutAbort:
		s.stage = cutClose
		if s.body == nil {
			// abort closes the body itself: its reader may not
			// close it again.
			s.done, s.closed = true, true
		}
		s.mu.Unlock()
		s.abort() // unlocked: a Close may wait for the Read in progress
		s.mu.Lock()
		if !s.done {
			s.timer.Reset(closeGrace)
		}
		s.mu.Unlock()
	default:
		s.done, s.closed = true, true
		s.mu.Unlock()
		s.body.Close()
	}
}

// stop disarms s, and reports whether it closed the body.
func (s *softCut) stop() bool {
	s.mu.Lock()
	s.done = true
	s.timer.Stop()
	closed := s.closed
	s.mu.Unlock()
	return closed
}
