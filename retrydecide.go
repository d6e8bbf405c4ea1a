package resilient

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// This file holds the retry loop's decisions after an attempt: whether to
// retry, and the wait before the next attempt.

// decide returns whether attempt n is followed by another and the wait
// before it, or why not when the attempt's outcome was retryable.
func (c *call) decide(n, maxAttempts int, st *attemptState, resp *http.Response, err error, body *replayBody) (time.Duration, bool, StopReason) {
	c.need = 0
	if st.class == Success {
		return 0, false, "" // nothing below retries a success
	}
	// What the caller plugged in may panic here (its BackOff, a
	// SharedBudget, a function that keys the breaker or the rate limiter):
	// resp, which the caller then never sees, is closed on the way out,
	// as around every such function (see closeOnPanic).
	done := false
	defer closeOnPanic(resp, &done)
	delay, retry, stop := c.decideRetry(n, maxAttempts, st, resp, err, body)
	done = true
	return delay, retry, stop
}

// peekTimedOut reports whether db, the deadline armed for an attempt that
// answered with resp, fired as its attempt timeout and cut the read of its error body the Transport made
// itself (the envelope's peek): the deadline that fired is the attempt
// timeout's, not the budget's, and it fired while the peek still read,
// which ended in the cut's error. A deadline that fired once the body was
// read whole, or one never peeked at (not JSON), cut nothing: the answer
// is in, and is retried as any. Read where the peek ends (see
// classifier.classify): by the time the retry loop decides, the layers
// above have wrapped the body, and the deadline may have fired since.
func peekTimedOut(resp *http.Response, db *deadlineBody) bool {
	if db == nil || db.timeout <= 0 {
		return false
	}
	pb, ok := resp.Body.(*prefixBody)
	return ok && pb.err != nil && db.state.Load() == deadlineFired
}

// decideRetry is decide for an outcome that is not a success.
func (c *call) decideRetry(n, maxAttempts int, st *attemptState, resp *http.Response, err error, body *replayBody) (time.Duration, bool, StopReason) {
	if c.canceled() {
		return 0, false, stopIf(st, StopCanceled)
	}
	keyRetry := resp != nil && c.needsKey(st)
	if n >= maxAttempts {
		if keyRetry {
			return 0, false, StopMaxAttempts // the one Permanent answer retried
		}
		return 0, false, stopIf(st, StopMaxAttempts)
	}
	if keyRetry {
		// The server requires a key this call lacked (and did not say
		// not to retry, see needsKey): add one and retry once, at once.
		// This is the only case a Permanent outcome is retried; the
		// request was refused, so it was not processed, and
		// a server that requires keys honors them (unless it refuses the
		// retry's key as missing too: it does not read it, and is then
		// forgotten, see ignoresKeys). A read's answer teaches nothing:
		// the read sent no key, and its answer (a proxy's, another
		// route's, an echo of a stored error) says nothing of how the
		// host deduplicates writes, as a read's idempotency codes do not
		// (see honorsKeys).
		c.key, c.stamp, c.keyRetry = newIdempotencyKey(), true, true
		c.header = nil
		if !body.replayable() {
			return 0, false, StopBodyNotReplayable
		}
		// The host is learned once the retry is answered, not before: only
		// the retry's answer tells a host that deduplicates by key from
		// one that asks for a key it does not read (see ignoresKeys),
		// and learned for a retry never sent (refused here, or below
		// the loop: its turn at the rate limiter past the deadline, an
		// open breaker, WithMaxInFlight), such a host had its other
		// writes resent after a 5xx, and stored twice. The call takes
		// the host for one that honors keys meanwhile (see resendable),
		// and the retry's need is reckoned so (a write that may be
		// resent needs what any retry needs).
		learn := !isSafeRead(c.req.Method) && !virtualHost(c.req)
		// At once, but not with less left than any retry needs (see
		// leastLeft): the refusal says the write was not processed, and
		// a retry cut by the deadline may have been.
		if c.need = c.retryNeedAs(st, learn || c.resendable()); c.retryLate(0) {
			return 0, false, StopDeadline
		}
		// A retry as any other: paid for from the host's budget, so that
		// a host (or a proxy before it) that answers every call so, and
		// ignores the key it asked for, does not get two attempts per
		// call for ever, whatever the budget holds.
		if !c.payRetry(n, false) {
			return 0, false, StopRetryBudget
		}
		c.learnOnSend = learn // learned as the host answers the retry (see run)
		return 0, true, ""
	}
	if !st.class.Retryable() {
		return 0, false, ""
	}
	if c.write && !c.mayResend(st, resp, err) {
		return 0, false, StopUnsafeWrite // what the caller must know first: it may have been processed
	}
	if c.cfg.attemptFloored && (attemptTimedOut(err) || st.peekCut) {
		// Cut by the call's attempt timeout, given below the floor and
		// counted as 1ms (a units mistake, most likely), before its
		// headers or while its error body was read: each retry would
		// be cut alike.
		return 0, false, StopDeadline
	}
	if !body.replayable() {
		return 0, false, StopBodyNotReplayable
	}
	if c.bo == nil {
		if c.cfg.newBackOff != nil {
			// Reset before use, as cenkalti/backoff's own Retry does
			// ("Reset must be called before using b"): an
			// ExponentialBackOff whose InitialInterval was set after
			// NewExponentialBackOff, or written as a literal, starts
			// from its settings, not from the defaults or from zero.
			// A BackOff variable left unset, a nil pointer whose
			// methods fail, is nil.
			if c.bo = c.cfg.newBackOff(); c.bo != nil && !resetBackOff(c.bo) {
				c.bo = nil
			}
		}
		if c.bo == nil {
			c.bo = &expBackoff{base: c.cfg.backoffBase, maxDelay: c.cfg.backoffMax, rand: c.cfg.rand}
		}
	}
	delay := c.bo.NextBackOff()
	if delay == backoff.Stop {
		return 0, false, StopBackOff
	}
	delay = max(delay, 0) // a BackOff's negative delay other than Stop: no wait
	c.need = c.retryNeed(st)
	if st.hasRetryAfter {
		if st.retryAfter > c.cfg.maxRetryAfter {
			return 0, false, StopRetryAfterTooLong
		}
		// A server's wait shorter than the backoff's base (Retry-After: 0,
		// a date past) is raised to it: no hot loop. It is then a
		// backoff's wait, spread as one within the backoff's cap, so that
		// the callers a server told 0 at once do not all come back at the
		// base together.
		wait := max(st.retryAfter, c.cfg.backoffBase)
		spread := retryAfterSpread(wait, c.cfg.rand)
		if st.retryAfter < c.cfg.backoffBase {
			spread = min(spread, max(c.cfg.backoffMax-wait, 0))
		}
		delay = wait + spread
		if c.retryLate(delay) {
			// The spread, not the server's wait, would pass the deadline
			// (or leave the retry less than it needs): the retry goes
			// without it.
			delay = wait
		}
	}
	// Added one at a time: a delay near the largest Duration (a BackOff's
	// "never", WithBackoff(math.MaxInt64, math.MaxInt64)) plus need
	// overflows to a negative wait, which passed this check, and the call
	// then waited past its budget, for ever without a context deadline.
	if c.retryLate(delay) {
		return 0, false, StopDeadline
	}
	if c.t.budgets != nil {
		// Paid for before the breaker's and the rate limiter's forecasts
		// below: a retry they expect refused goes at once, and is given
		// back what it paid when it is; but it may not be (the rate
		// limiter holds it until the breaker lets a probe through, or a
		// ResetHost cleared the pause), and it then reaches the host as
		// any retry does, paid for.
		// A retry is the server's to pace only when its wait is the
		// server's (a Retry-After, or the reset a 429 announced), not
		// the backoff's: a 429 or a 503 without one, or whose wait is 0,
		// a date past or shorter than the backoff's base (raised to it
		// above), paces nothing but the backoff, and a host answering it
		// to every call is in an outage that such retries would
		// multiply tenfold.
		throttled := st.hasRetryAfter && st.retryAfter > 0 && st.retryAfter >= c.cfg.backoffBase &&
			(st.class == Throttled || resp != nil && resp.StatusCode == http.StatusServiceUnavailable)
		if !c.payRetry(n, throttled) {
			return 0, false, StopRetryBudget
		}
	}
	if c.t.breakers != nil && !errors.Is(err, ErrCircuitOpen) && c.t.breakers.openFor(c.keyRequest(), delay) {
		// The host's breaker will still be open when the wait ends, and
		// would refuse the retry then: it is refused now instead, and
		// the call returns what it has, without waiting for nothing (the
		// refusal gives back what the retry paid). (A refusal a
		// Classifier retries waits as any retry does.)
		c.forecast = true
		return 0, true, ""
	}
	if c.t.rl != nil && !errors.Is(err, ErrRateLimited) && c.t.rl.refusesAfter(c.keyRequest(), delay, c.startBy(), c.cfg.maxRetryAfter) {
		// The same for the host's pause (another call's 429): it will
		// still hold past the call's deadline, or longer than the call
		// waits for, when the wait ends, and the rate limiter would
		// refuse the retry then.
		c.forecast = true
		return 0, true, ""
	}
	return delay, true, ""
}

// retryNeed returns the time the retry after attempt st must have left once
// its wait ends (zero for a call without a deadline): at least what any
// retry needs (see leastLeft). A write the Transport could not resend after
// an ambiguous failure needs as long as the host took to answer st: a
// retry cut by the deadline before its answer came may have been
// processed, and would end the call in a timeout where the answer it has
// (a 429, a refused dial) says that the write was not. The retry's own
// waits below the loop (the rate limiter's, a slot's of WithMaxInFlight)
// end that much before the deadline too (see c.need).
func (c *call) retryNeed(st *attemptState) time.Duration {
	return c.retryNeedAs(st, c.resendable())
}

// retryNeedAs is retryNeed for a call whose write the Transport could
// resend after an ambiguous failure when resendable.
func (c *call) retryNeedAs(st *attemptState, resendable bool) time.Duration {
	if c.deadline.IsZero() {
		return 0
	}
	// What the host took to answer st: its start was moved on by its
	// waits for the rate limiter and a slot of its host (see
	// attemptState.start), which are not taken off again.
	var took time.Duration
	if !st.start.IsZero() {
		took = max(time.Since(st.start), 0)
	}
	need := c.leastLeft(took)
	if c.write && !st.start.IsZero() && !resendable {
		need = max(need, took)
	}
	return need
}

// leastLeft returns the least time a retry of the call (or a hedged copy of
// an attempt, see live) must have left of it when it starts, last being
// how long the host took with the attempt before it (0 for none): the
// larger of a tenth of last and durationFloor. A retry left less would be
// cut before the host could answer it (the host still does the work, and
// the breaker counts the cut by the budget against the host), where a
// plain client would have sent none: the call returns what it has instead
// (StopDeadline). The attempt timeout (WithAttemptTimeout) says nothing of
// how long the host takes: a tenth of a 5-minute one would refuse a host
// that answers in 10ms every retry in a call's last 30s
// (TestRetryNotStartedWithAlmostNoTimeLeft).
func (c *call) leastLeft(last time.Duration) time.Duration {
	return max(durationFloor, last/10)
}

// startBy returns when the call's next attempt must start at the latest:
// its deadline, earlier by what it needs (see decide); zero for none.
func (c *call) startBy() time.Time {
	if c.need > 0 {
		return c.deadline.Add(-c.need)
	}
	return c.deadline
}

// payRetry takes the cost of the retry after attempt n, a throttled one
// when throttled, from the host's retry budget, and reports whether it
// could (true without a budget, or for a request without one: see
// budgetKey). What it took is given back when the retry is not
// sent after all (see giveBackRetry).
func (c *call) payRetry(n int, throttled bool) bool {
	if c.t.budgets == nil {
		return true
	}
	if b := c.hostBudget(); b != nil {
		if b.tokens.Load()&budgetDropped != 0 && !c.owed {
			// A full table dropped the budget since the call looked it
			// up (full again, as a new one is): the retry pays to the
			// host's budget in the table, which its other calls pay
			// to, not to a second one of the host. Not while the cost
			// of an attempt never sent is owed back to the budget the
			// call holds (see call.owed).
			c.hb = nil
			b = c.hostBudget()
		}
		if !c.t.budgets.withdraw(b, throttled) {
			return false
		}
		c.paid, c.paidThrottled, c.paidFor = true, throttled, n+1
	}
	return true
}

// giveBackRetry gives back to the host's retry budget what decide took for
// the next attempt, when it is not sent after all.
func (c *call) giveBackRetry() {
	if c.paid {
		c.paid = false
		c.t.budgets.giveBack(c.hb, c.paidThrottled)
	}
}

// giveBackRetryOf is giveBackRetry for the retry of an attempt that got
// resp (nil for none), which the call returns instead: a SharedBudget's
// Deposit may panic, and resp, which the caller then never sees, is closed
// on the way out (see closeOnPanic).
func (c *call) giveBackRetryOf(resp *http.Response) {
	done := false
	defer closeOnPanic(resp, &done)
	c.giveBackRetry()
	done = true
}

// mayResend applies the write rule to an attempt of a write that failed:
// it may be resent when it provably was not processed (a 429, a 403
// classified Throttled, which refused it over a rate limit as GitHub's do,
// neither carrying a Postato platform error,
// or an error that proves it never left or was never written), or when it
// carries a key its host deduplicates by. One answered with a Postato
// platform error is never resent: the host took the post and finished it
// (see decide), and that answer is its key's, which a resend under the
// same key gets again ("the social network is called once"), whatever its
// retryable flag says of resubmitting, a new post under a new key.
func (c *call) mayResend(st *attemptState, resp *http.Response, err error) bool {
	switch {
	case resp != nil && st.platform:
		return false
	case resp != nil && refusedUnprocessed(st, resp):
		return true
	case err != nil && c.provablyUnsent(st, err):
		return true
	}
	return c.resendable()
}

// refusedUnprocessed reports whether resp, the answer to attempt st of a
// write, proves that the server did not process it: a 429, or a 403
// classified Throttled, which refused it over a rate limit (as GitHub's
// do). Any other failure answered may follow the write's processing, and
// so does one that carries a Postato platform error, a 429 too: the host
// took the post and answers with the social network's verdict on it
// (see decide), whatever its status.
func refusedUnprocessed(st *attemptState, resp *http.Response) bool {
	if st.platform {
		return false
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden && st.class == Throttled
}

// provablyUnsent reports whether the attempt st, which failed with err,
// provably never reached the server: net/http's Transport, the base, never
// got it a connection (see writeTrace), or its error proves it (st.neverSent: a refused dial,
// a request net/http refused to send, a stream refused unprocessed or
// above a graceful GOAWAY's last stream ID, a caller's body that broke
// before the server could act on it), unless net/http got a connection
// for it: then the error may be that of net/http's own resend of a request
// it had written (HTTP/2 resends one reset with PROTOCOL_ERROR on a new
// connection, whose dial may be refused), or one it read after writing it
// (a TLS record of the wrong version, an invalid header value in the
// answer). Four proofs hold on a connection too: a *RequestError's (the
// server cannot act on a body cut short; not a callback's refusal, see
// requestCutShort), HTTP/2's refusal of a stream
// that net/http could not resend itself (see refusedUnresent), a GOAWAY's
// refusal of the only stream net/http sent it on (see goAwayFirstStream),
// and the error of the connection net/http's HTTP/1 Transport looked for
// on its own after one it wrote nothing on (see writeTrace.redialed),
// after which only it resends a write that carries no key it sees (see
// keyedHeader): a refused dial while the server restarts, after it closed
// the idle connection. The error of a call below (a Transport given this
// one's attempts) that may have had the write processed by an earlier
// attempt proves nothing (see lostWriteError), whatever it reads as.
func (c *call) provablyUnsent(st *attemptState, err error) bool {
	return c.unsentBy(c.trace, st, err)
}

// unsentBy is provablyUnsent for an attempt, or a hedged copy of one,
// traced by w (nil for none).
func (c *call) unsentBy(w *writeTrace, st *attemptState, err error) bool {
	if lostBelow(err) {
		return false // a call below may have had the write processed (see lostWriteError)
	}
	if w.neverWritten(c.t.base) {
		return true
	}
	if w.oneConnection(c.t.base) && goAwayFirstStream(err) {
		return true
	}
	return st.neverSent && (!w.gotConnection() || requestCutShort(err) || refusedUnresent(err) || w.redialed(c.t.base))
}

// requestCutShort reports whether err is a *RequestError of a request the
// server could not act on even on a connection: its body broke, a header
// net/http refuses to send. A callback's refusal of a connection (see
// callbackFault) is none: net/http may have written the request on an
// earlier connection and met the refusal, or the caller's GetBody's bare
// error, which reads as one, resending it itself (HTTP/2 resends a stream
// reset with PROTOCOL_ERROR).
func requestCutShort(err error) bool {
	return errors.As(err, new(*RequestError)) && !errors.As(err, new(*callbackRefusal))
}

// isSafeRead reports whether method is a read by its definition (RFC 9110,
// section 9.2.1): GET, HEAD, OPTIONS or TRACE; an empty method means GET.
func isSafeRead(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// stopIf returns why when the attempt's outcome was retryable, else "".
func stopIf(st *attemptState, why StopReason) StopReason {
	if st.class.Retryable() {
		return why
	}
	return ""
}

// refusedLocally reports whether err is a layer of the chain refusing an
// attempt without touching the network. The refusal that ends a call below
// after an earlier attempt of its write may have been processed (see
// lostWriteError) is none: that call touched the network.
func refusedLocally(err error) bool {
	return (errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTooManyInFlight)) && !lostBelow(err)
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

// waitRetry waits d before the call's next attempt, or until the call is
// canceled (returning the cause: its context's, or errRequestCanceled).
// With reset, the wait is for a server's Retry-After, which is the host's
// pause: a Transport.ResetHost of the call's host ends it early, as it ends
// the pause the rate limiter holds, and waitRetry reports that it was
// woken.
func (c *call) waitRetry(d time.Duration, reset *resetSignal) (woken bool, err error) {
	if reset == nil && cancelOf(c.req) == nil {
		return false, sleep(c.ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		var resetCh chan struct{} // nil, which never fires, without reset
		if reset != nil {
			resetCh = reset.ch
		}
		select {
		case <-c.ctx.Done():
			return false, context.Cause(c.ctx)
		case <-cancelOf(c.req):
			return false, errRequestCanceled
		case <-timer.C:
			return false, nil
		case <-resetCh:
			if c.resetReaches(reset.m) {
				return true, nil
			}
			reset = reset.next
		}
	}
}

// errRequestCanceled is the cause of a call whose caller closed the
// request's Cancel channel.
var errRequestCanceled = errors.New("resilient: request canceled by its Cancel channel")

// canceled reports whether the caller canceled the call: its context is
// done, or it closed the request's Cancel channel (deprecated, yet still
// honored by net/http, which then fails the request at once, with an error
// of its own that tells nothing of the host). It is asked only after a
// failure.
func (c *call) canceled() bool {
	return callerGaveUp(c.ctx, cancelOf(c.req))
}

// callerGaveUp reports whether the caller of a request gave up on it: ctx,
// its context, is done, or cancel, its Cancel channel, is closed. It is the
// one rule of the call's cancellation (see call.canceled) and of an
// attempt's (see attemptOutcome).
func callerGaveUp(ctx context.Context, cancel <-chan struct{}) bool {
	return ctx.Err() != nil || isClosed(cancel)
}

// cancelOf returns req's Cancel channel: deprecated since Go 1.7, yet
// http.Client still closes it at its Timeout, and net/http's Transport
// still honors it, so the Transport honors it too (see Transport). It is
// the one place that reads the field.
func cancelOf(req *http.Request) <-chan struct{} {
	//lint:ignore SA1019 http.Client closes it at its Timeout: a caller's cancel.
	return req.Cancel
}

// retryLate reports whether a retry whose wait of delay starts now would
// pass the call's deadline, with what it needs (c.need, see decide).
// Added one at a time: a delay near the largest Duration plus need would
// overflow to a negative wait.
func (c *call) retryLate(delay time.Duration) bool {
	return !c.deadline.IsZero() && !time.Now().Add(delay).Add(c.need).Before(c.deadline)
}
