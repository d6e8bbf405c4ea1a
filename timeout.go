package resilient

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
// is left to the base, which honors it; the middleware arms a timer only
// when the attempt timeout or the budget ends first.
//
// The timer runs until the Transport hands the response to the caller, so
// that what the Transport reads of the body itself (an error envelope, a
// drain) is bounded by it too; once handed over, the body is the caller's
// and no deadline of the attempt applies to it any longer.
//
// Through the Transport, the attempt timeout is the call's (see
// WithCallOptions); attemptTimeout applies to requests sent through the
// middleware directly.
func deadlineMiddleware(attemptTimeout time.Duration) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &attemptDeadline{next: next, d: attemptTimeout}
	}
}

type attemptDeadline struct {
	next http.RoundTripper
	d    time.Duration // the attempt timeout; 0 for none
}

func (t *attemptDeadline) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTripAttempt(req, nil)
}

func (t *attemptDeadline) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	parent := req.Context()
	var (
		now   time.Time
		end   time.Time
		cause error
	)
	d := t.d
	if st != nil && st.callCfg != nil {
		d = st.callCfg.attemptTimeout
	}
	if d > 0 {
		now = time.Now()
		end, cause = now.Add(d), fmt.Errorf("%w after %v", ErrAttemptTimeout, d)
	}
	if st != nil && !st.budget.IsZero() && (end.IsZero() || st.budget.Before(end)) {
		end, cause = st.budget, errBudgetSpent
	}
	if end.IsZero() {
		return roundTripNext(t.next, req, st)
	}
	if d, ok := parent.Deadline(); ok && !d.After(end) {
		return roundTripNext(t.next, req, st) // the context ends first: the base sees to it
	}
	if now.IsZero() {
		now = time.Now()
	}
	ctx, cancel := context.WithCancelCause(parent)
	db := &deadlineBody{cancel: cancel, cause: cause}
	db.timer = time.AfterFunc(end.Sub(now), db.fire)
	resp, err := roundTripNext(t.next, req.WithContext(ctx), st)
	if err != nil {
		fired := !db.keep()
		cancel(nil)
		if fired && parent.Err() == nil {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return nil, err
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

// errBudgetSpent is the cause of an attempt cut because the call's budget
// (WithMaxElapsed) ran out.
var errBudgetSpent = fmt.Errorf("%w: the call's budget (WithMaxElapsed) is spent", ErrAttemptTimeout)

// States of a deadlineBody.
const (
	deadlineRunning int32 = iota // the timer may still fire
	deadlineKept                 // handed to the caller: the timer is stopped
	deadlineFired                // the timer fired: the attempt's context is canceled
)

// deadlineBody is the body of a response whose attempt ran under a timer.
// It releases the attempt's context when closed.
type deadlineBody struct {
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	cause  error
	timer  *time.Timer
	state  atomic.Int32
}

func (b *deadlineBody) fire() {
	if b.state.CompareAndSwap(deadlineRunning, deadlineFired) {
		b.cancel(b.cause)
	}
}

// keep stops the timer for good, and reports whether it did so before the
// timer fired.
func (b *deadlineBody) keep() bool {
	if b.state.CompareAndSwap(deadlineRunning, deadlineKept) {
		b.timer.Stop()
		return true
	}
	return b.state.Load() == deadlineKept
}

// abort ends the attempt now, as its deadline would.
func (b *deadlineBody) abort(cause error) {
	if b.state.CompareAndSwap(deadlineRunning, deadlineFired) {
		b.timer.Stop()
		b.cancel(cause)
	}
}

func (b *deadlineBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *deadlineBody) Close() error {
	err := b.rc.Close()
	b.timer.Stop()
	b.cancel(nil)
	return err
}

// deadlineRWBody is the body of a 101 Switching Protocols response: the
// upgraded connection, which stays writable.
type deadlineRWBody struct {
	*deadlineBody
	w io.Writer
}

func (b *deadlineRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// handOver gives resp to the caller: the attempt's timer, if any, stops for
// good. When the timer had fired first, the attempt's context is canceled
// and the body cut: handOver then returns the timer's cause.
func handOver(resp *http.Response) error {
	if db, ok := resp.Body.(*deadlineBody); ok && !db.keep() {
		return db.cause
	}
	return nil
}

// errReadStalled is the cause given when a body the Transport reads itself
// stalls past maxReadWait.
var errReadStalled = fmt.Errorf("resilient: response body stalled for %v", maxReadWait)

// abortAfter arranges for body to be cut if it is still being read by the
// Transport after d: through the attempt's context when the attempt runs
// under a timer, else by closing it. The returned function disarms it.
func abortAfter(body io.ReadCloser, d time.Duration) (stop func() bool) {
	var abort func()
	if db, ok := body.(*deadlineBody); ok {
		abort = func() { db.abort(errReadStalled) }
	} else {
		abort = func() { body.Close() }
	}
	return time.AfterFunc(d, abort).Stop
}
