package resilient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// This file holds the body of a response whose attempt ran under a deadline,
// which keeps or releases that deadline.

// init makes db the deadline of an attempt under parent that ends at end
// (zero when not known yet), and returns the attempt's context: db's own
// when parent can never be canceled, else one derived from parent, whose
// Deadline is the attempt's too (see boundCtx). The deadline is not armed
// yet: see deadlineWatch.arm.
func (db *deadlineBody) init(parent context.Context, end time.Time) context.Context {
	db.own.parent = parent
	db.own.end = end
	if parent.Done() == nil {
		// The caller's context is never canceled: the body is the
		// attempt's context too, with nothing to propagate.
		db.ctx = &db.own
		return db.ctx
	}
	db.ctx, db.cancel = context.WithCancelCause(parent)
	return (*boundCtx)(db)
}

// reqCtx returns the context init returned for db: the one its attempt's
// request carries.
func (db *deadlineBody) reqCtx() context.Context {
	if db.cancel == nil {
		return &db.own
	}
	return (*boundCtx)(db)
}

// boundCtx is the context of an attempt under a deadline whose caller's
// context can be canceled: the context derived from the caller's (the
// deadlineBody's ctx), whose Deadline is the attempt's (own.end, which is
// before the caller's deadline, if any), as that of an attempt under a
// caller's context that is never canceled (attemptCtx) is, and as that of
// a plain client's request under its Timeout is: a base that reads it (to
// tell the server how long it has, as a deadline-propagating SDK does)
// sees the same deadline whatever the caller's context. It costs
// nothing of its own: it is its deadlineBody. A context derived from it
// finds the cancelable context below it through Value, as it would that
// context itself, and follows it without a goroutine of its own.
type boundCtx deadlineBody

func (c *boundCtx) Deadline() (time.Time, bool) {
	if c.own.end.IsZero() {
		return c.ctx.Deadline()
	}
	return c.own.end, true
}

func (c *boundCtx) Done() <-chan struct{} { return c.ctx.Done() }
func (c *boundCtx) Value(key any) any     { return c.ctx.Value(key) }
func (c *boundCtx) String() string        { return "resilient.boundCtx" }

// Err is context.DeadlineExceeded once the attempt's deadline (or the
// bound of a read the Transport made itself, see abort) cut it, as an
// attemptCtx's is and as the context package defines Err for a deadline
// that passed: the context derived from the caller's is canceled then, its
// Err context.Canceled, which a base that returns its request context's
// Err (net/http's HTTP/2 Transport does) would pass on to the caller as a
// cancel of its own. A cancel of the caller's, and the release of the
// attempt, keep theirs. (A context derived from this one, which follows
// the one below it, still says context.Canceled; its cause says why.)
func (c *boundCtx) Err() error {
	err := c.ctx.Err()
	if err == context.Canceled && isDeadlineCause(context.Cause(c.ctx)) {
		return context.DeadlineExceeded
	}
	return err
}

// isDeadlineCause reports whether cause, that of a canceled context, is the
// cut of an attempt by its deadline (see deadlineBody.cause), or by the
// bound of a read the Transport made itself (errReadStalled): the cause
// itself, as deadlineBody.cause and abort give it, or as the context of an
// outer Transport's attempt passes it on. An error that merely wraps one
// is a caller's cause (errgroup.WithContext cancels its context with a
// sibling's error, which may be a call cut by its deadline): a cancel.
func isDeadlineCause(cause error) bool {
	_, ok := cause.(*timeoutCause)
	return ok || cause == errReadStalled
}

// copyRequest returns a copy of req with ctx, kept in db, so that the copy
// and its deadline cost one allocation. (WithContext is inlined: the copy
// it makes stays on the stack.)
func (db *deadlineBody) copyRequest(req *http.Request, ctx context.Context) *http.Request {
	db.req = *req.WithContext(ctx)
	return &db.req
}

// release gives db's slot back: its deadline no longer matters.
func (db *deadlineBody) release() {
	if db.timer != nil {
		db.timer.Stop()
	} else if db.watch != nil {
		db.watch.slots[db.slot].CompareAndSwap(db, nil)
	}
}

// deadline returns the end of db's deadline, once armed, whether its timer
// still runs or not.
func (db *deadlineBody) deadline() time.Time {
	return db.watch.epoch.Load().Add(time.Duration(db.end))
}

// releaseOnPanic releases db, the deadline of an attempt, unless *returned:
// it is deferred around the layers below the deadline's (the base
// RoundTripper, a Classifier, a Tracer), one of which panicked. The
// attempt is over: its slot and its context would otherwise be held until
// the deadline fired, as would the context's registration with the
// caller's.
func (db *deadlineBody) releaseOnPanic(returned *bool) {
	if !*returned {
		db.keep()
		db.cancelWith(nil)
	}
}

// States of a deadlineBody.
const (
	deadlineRunning      int32 = iota // the timer may still fire
	deadlineKept                      // handed to the caller: the timer is stopped
	deadlineFired                     // the timer fired: the attempt's context is canceled
	deadlineAborted                   // a read the Transport made stalled (see abort): the context is canceled, not by the timer
	deadlineReading                   // the Transport reads the body within the attempt (see beginRead): the timer may still fire
	deadlineFiredReading              // the timer fired during that read: rc is closed closeGrace later unless the read ended (see closeStalled)
)

// deadlineBody is the body of a response whose attempt ran under a timer.
// It releases the attempt's context when closed.
type deadlineBody struct {
	rc      io.ReadCloser
	timeout time.Duration // the attempt timeout that set the deadline; 0 for the call's budget
	state   atomic.Int32

	// What fires the deadline: a slot of watch (slot), or a timer of its
	// own (timer, slot -1).
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
// call set it tighter than the Transport's; a timeoutCause, for the body
// whose read it cuts.
func (b *deadlineBody) cause() error {
	switch {
	case b.timeout > 0 && b.callers:
		return &timeoutCause{fmt.Errorf("%w after %v: %w", ErrAttemptTimeout, b.timeout, errCallersLimit)}
	case b.timeout > 0:
		return &timeoutCause{fmt.Errorf("%w after %v", ErrAttemptTimeout, b.timeout)}
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

// fire cuts the attempt as its deadline passes, unless the deadline was
// kept or the attempt aborted first. A read within the attempt that ends
// as it fires (see endRead) turns the state from reading back to running
// under it: fire tries again, so that the deadline is not lost.
func (b *deadlineBody) fire() {
	for {
		switch b.state.Load() {
		case deadlineRunning:
			if !b.state.CompareAndSwap(deadlineRunning, deadlineFired) {
				continue
			}
			b.cancelWith(b.cause())
		case deadlineReading:
			if !b.state.CompareAndSwap(deadlineReading, deadlineFiredReading) {
				continue
			}
			b.cancelWith(b.cause())
			time.AfterFunc(closeGrace, b.closeStalled)
		}
		return
	}
}

// beginRead marks the start of a read of body, the base's body of the
// attempt's response, that the Transport makes within the attempt (see
// bufferBody), so that a read the attempt's context does not cut (a base's
// body that no context reaches) is cut by closing body closeGrace after the
// deadline fired, as abortAfter cuts the reads it bounds. It reports
// whether it did: not when the deadline has fired already. It costs no
// allocation: the timer that closes body is set only when the deadline
// fires during the read.
func (b *deadlineBody) beginRead(body io.ReadCloser) bool {
	b.rc = body // published by the swap below, read by closeStalled after its own
	return b.state.CompareAndSwap(deadlineRunning, deadlineReading)
}

// endRead marks the end of the read beginRead began. It reports whether
// closeStalled closed the body under it, the deadline having fired: the
// reader may not close it again, nor hand over its response (rc is
// closeStalled's to read).
func (b *deadlineBody) endRead() (closed bool) {
	if b.state.CompareAndSwap(deadlineReading, deadlineRunning) || b.state.CompareAndSwap(deadlineFiredReading, deadlineFired) {
		return false
	}
	return true
}

// closeStalled closes the body of a read within the attempt that its
// deadline's cut of the context did not end within closeGrace (see
// beginRead).
func (b *deadlineBody) closeStalled() {
	if b.state.CompareAndSwap(deadlineFiredReading, deadlineFired) {
		b.rc.Close()
	}
}

// keep stops the timer for good, and reports whether it did so before the
// timer fired: the timer's cause is the attempt's then. An abort is no
// firing: what it cut (a stalled peek at an error body) is the body's
// error, for its reader.
func (b *deadlineBody) keep() bool {
	if b.state.CompareAndSwap(deadlineRunning, deadlineKept) || b.state.CompareAndSwap(deadlineReading, deadlineKept) {
		// (A read within the attempt is kept only as a panic ends it.)
		b.release()
		return true
	}
	s := b.state.Load()
	return s != deadlineFired && s != deadlineFiredReading
}

// abort ends the attempt's context now, as its deadline would, with cause:
// a read the Transport makes itself stalled. The attempt is not cut by its
// deadline for it (see keep).
func (b *deadlineBody) abort(cause error) {
	if b.state.CompareAndSwap(deadlineRunning, deadlineAborted) {
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
