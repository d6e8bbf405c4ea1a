package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// This file holds the renewal of an attempt's body that a hedged copy took
// over before it was read, and then read itself (see hedgeRun.renew).

// renewedBody is a body from GetBody that an attempt's Read reads in place
// of the body a copy took over (see checkedBody.fresh).
type renewedBody struct {
	rc io.ReadCloser
}

// renew gives body, the attempt's, which a copy took over before it was
// read (see nextBody), a body of its own from GetBody once its Read
// began, and reports whether it tried (body is no longer taken over then:
// it is renewed, or lost when GetBody failed). It tries when the body made
// last, the copy's, was sent (read to its end, or closed: see
// checkedBody.sent), no copy's GetBody runs, the attempt is neither
// decided nor ended, its body is not closed, and the retry loop has not taken the run's body (see
// sealBody): as a copy calls GetBody once the body before was sent. The
// copy that read the body may yet get a 503, or hang: the attempt, whose
// connection was ready later, sends the body still, as without hedging
// (TestHedgingTakenOverBodyReadByCopyRenewed), rather than fail, and the
// call retry or wait for that copy. Meanwhile body is the run's body made
// last, being read: a later copy is not sent, and a retry's GetBody waits
// for this Read. GetBody runs on the Read's goroutine (net/http's, which
// writes the request): a panic of it goes to the caller, as a copy's
// does (see panicked), and the Read fails, as it does with the error of a
// GetBody that fails (TestHedgingRenewGetBodyFailsSaysSo); GetBody is then
// asked for no other body, neither a later copy's nor a retry's: the call
// ends with what the copies got, as it does when a retry's GetBody fails
// (TestHedgingRenewGetBodyFailureEndsTheCall). Its time is
// the Transport's, not the caller's body stalling: an attempt's deadline
// that cuts it is a timeout (TestHedgingRenewSlowGetBodyIsNoStall). An
// attempt decided, ended or timed out while GetBody ran sends no body: the
// body GetBody made is closed, and a Read cut by the caller's cancel fails
// with its cause (TestHedgingRenewCanceledSaysSo).
func (run *hedgeRun) renew(body *checkedBody) bool {
	run.mu.Lock()
	decided := run.winner >= 0
	run.mu.Unlock()
	run.getMu.Lock()
	last := run.body
	if decided || run.sealed || run.getting != nil || last == nil || last == body || !last.sent() ||
		run.attemptCtx.Err() != nil || body.closed.Load() || !body.use.CompareAndSwap(bodyTaken, bodyRenewing) {
		run.getMu.Unlock()
		return false
	}
	run.body = body
	// The renewal, of unknown length, must be as long as the body the
	// copy sent (see checkedBody.replayLength), as a retry's must.
	body.replay = last.replayLength()
	run.getMu.Unlock()
	// GetBody is the Transport's wait, not a Read of the caller's body:
	// a deadline that cuts it is no stall (see bodyWatch), as one that
	// cuts a wait for a copy's GetBody (see waitForCopy). The body is not
	// sent meanwhile (see sent): a retry's GetBody waits for this one.
	body.watch.reading.Store(false)
	rc, err := run.renewBody()
	body.watch.reading.Store(true) // the Read goes on (see beginRead)
	if err != nil {
		// The Read fails with GetBody's error, as the call does when a
		// retry's GetBody fails (see replayBody.next), not with
		// errBodyDetached alone: the copy that sent the body may still
		// answer, and the attempt counts as not sent, as before.
		err = &renewalError{fmt.Errorf("%w; %w", errBodyDetached, err)}
		body.cut.Store(&err)
		body.use.Store(bodyLost) // the Read detaches it (see beginRead)
		return true
	}
	if run.attemptCtx.Err() != nil || body.watch.cut() {
		// Decided, or ended, or timed out while GetBody ran: the body
		// is not sent after that, as one reclaimed is not (see
		// reclaim; TestHedgingRenewDecidedMeanwhileSendsNoBody).
		rc.Close()
		body.cutBy(run.attemptCtx)
		body.use.Store(bodyLost)
		return true
	}
	f := &renewedBody{rc: rc}
	body.fresh.Store(f)
	body.use.Store(bodyRenewed)
	if body.closed.Load() && body.fresh.CompareAndSwap(f, nil) {
		rc.Close() // a Close that ran meanwhile did not see it (see closeRenewed)
	}
	return true
}

// renewBody returns a body from the GetBody of the caller's request (see
// getBody), for renew, or GetBody's error as a retry's says it (see
// notReplayable). A panic of GetBody decides the attempt, unless another
// copy did first (see panicked), and returns an error.
func (run *hedgeRun) renewBody() (rc io.ReadCloser, err error) {
	defer func() {
		if p := recover(); p != nil {
			if idx := run.panicked(-1, p, nil); idx >= 0 {
				run.results <- idx
			}
			rc, err = nil, errBodyNotReplayable
		}
	}()
	if rc, err = getBody(&http.Request{GetBody: run.getBody}); err != nil {
		return nil, notReplayable(err)
	}
	return rc, nil
}

// closeRenewed is Close of a body renewed (see hedgeRun.renew): it closes
// the body from GetBody, whose error the attempt's is (see bodyFault),
// then the caller's own body, never read, whose error is no one's (a
// careless GetBody may hand out that body again, which closes twice).
func (b *checkedBody) closeRenewed() error {
	var re *RequestError
	if f := b.fresh.Swap(nil); f != nil {
		if err := f.rc.Close(); err != nil {
			re = bodyFault(b.want, b.read.Load(), err)
			b.failed.Store(re)
		}
	}
	b.rc.Close()
	if re != nil {
		return re
	}
	return nil
}

// renewalFault returns err, the failure of a Read of body, an attempt's
// renewed from GetBody (see hedgeRun.renew), which is not as long as the
// body the copy sent (see checkReplayLength): when none of it was read (a
// careless GetBody that hands out the body the copy drained), as the
// failure of a renewal whose GetBody failed, which it is: the attempt was
// not sent, the copy that sent the body may still answer, and GetBody is
// asked for no other body (see renewFailed). Any other failure is err.
func (b *checkedBody) renewalFault(err error) error {
	var le *replayLengthError
	if b.read.Load() > 0 || !errors.As(err, &le) {
		return err
	}
	err = &renewalError{fmt.Errorf("%w; %w", errBodyDetached, notReplayable(le))}
	b.cut.Store(&err)
	b.detached.Store(true) // a Read after it fails so too
	return err
}

// renewalError is the error of the Read of an attempt's body whose
// renewal's GetBody failed (see hedgeRun.renew), as body.cut holds it: its
// type, not an error it wraps, tells it from the cut of the attempt's
// context (see cutBy), whose cause is the caller's and may wrap any error,
// errBodyNotReplayable included (a sibling call's error given to
// context.WithCancelCause, as errgroup does).
type renewalError struct{ err error }

func (e *renewalError) Error() string { return e.err.Error() }

func (e *renewalError) Unwrap() error { return e.err }

// renewFailed returns the error of the Read of body, an attempt's, whose
// renewal's GetBody failed (see hedgeRun.renew): GetBody's, wrapping
// errBodyNotReplayable; nil for none. Neither a later copy (see
// hedgeRun.nextBody) nor a retry (see replayBody.next) calls GetBody
// after it: the call ends, as when a retry's GetBody fails.
func (b *checkedBody) renewFailed() error {
	if p := b.cut.Load(); p != nil {
		if _, ok := (*p).(*renewalError); ok {
			return *p
		}
	}
	return nil
}

// cutBy marks the Read of body, detached because ctx, the attempt's, is
// done, to fail with ctx's cause when it is the caller's cancel or the
// call's end, as the base's error would have said without the wait (see
// waitForCopy, renew), not errBodyDetached alone; the cut of another copy
// deciding the attempt says nothing to the caller.
func (b *checkedBody) cutBy(ctx context.Context) {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errHedgeLost) {
		err := fmt.Errorf("%w: %w", errBodyDetached, cause)
		b.cut.Store(&err)
	}
}
