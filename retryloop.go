package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// This file holds the retry loop: a call, its attempts and its end.

// endPanicking ends the call as end does when a panic goes through
// RoundTrip (from the base RoundTripper, a Classifier, an observer, a
// Tracer, the caller's GetBody), unless the call ended: its Report says
// what it did until then, with no status, outcome or stop reason, and the
// Tracer's call ends. It does not recover: the panic goes on to the
// caller, its value and its stack unchanged.
func (c *call) endPanicking(ended *bool) {
	if *ended {
		return
	}
	c.outcome, c.stop = "", ""
	c.end(nil, true)
}

// run is the retry loop of a call.
func (c *call) run() (*http.Response, error) {
	t, req := c.t, c.req
	var body replayBody
	// A body in memory over the limit is not copied for a retry or a
	// hedged copy (see memoryBody.init).
	captureLimit, memLimit := c.cfg.maxBufferedBody, c.cfg.maxBufferedBody
	if c.cfg.maxRetries == 0 {
		// A single attempt: no retry to replay the body for, nor a
		// hedged copy (see hedgeable).
		captureLimit, memLimit = 0, math.MaxInt64
	}
	// Deferred first: the caller's Seek, which init calls, may panic, and
	// the caller's body is closed then too.
	defer body.close()
	body.init(req, captureLimit, memLimit)
	c.capture = body.cap
	if body.mem.ok() {
		c.mem = body.mem // for hedged copies (see copyBody); no copy of a zero one on the success path of a GET
	}
	c.setDeadline()
	var hop redirectHop
	if req.Response != nil { // a request http.Client follows a redirect with
		hop = c.followRedirect(req)
	}
	c.key, c.stamp, c.callerKey, c.ownKey, c.keyPending = t.idempotencyKey(req, c.cfg, c.ctxKey, c.ctxBind, hop.key)
	if req.Response != nil {
		c.inheritMarks(hop)
	}
	c.write = !isIdempotentMethod(req.Method)
	maxAttempts := c.cfg.maxRetries + 1
	if maxAttempts < 1 { // WithMaxRetries(math.MaxInt)
		maxAttempts = c.cfg.maxRetries
	}

	if c.ctx.Err() != nil {
		// Done before the first attempt (or its budget spent before it,
		// see budgetSpentContext): no layer of the chain is called, and
		// the deferred close releases the body.
		return nil, c.fail(0, context.Cause(c.ctx))
	}
	if req.Response != nil && !c.budget.IsZero() && !c.budget.After(c.start.Add(durationFloor)) {
		// A hop of a redirect that came as the budget of the calls
		// before it ended, or left it less than durationFloor, as a
		// budget given per call may not (see clampFloors); not what a
		// retry needs (see leastLeft): the hop has no answer of its own
		// to return instead. It ends before its first attempt, as a call
		// whose context's deadline passed does, rather than send one cut
		// at once, which the host's breaker would count. Its Report says
		// why (StopDeadline): the budget, not the caller's context.
		c.stop = StopDeadline
		return nil, c.fail(0, errBudgetSpent)
	}

	var held *http.Response // the last response retried past, kept for give-up
	var lastErr error       // the error of the last attempt retried past, when it had no response
	reqBody, sameBody := body.first()
	// pending is the body of the attempt to send until the chain returns
	// from it; sending says that the chain has it. A panic before the base
	// RoundTripper got it (an observer's, the logger's, a Tracer's, a
	// function that keys a layer, a QuotaStore's) closes it, so that the
	// caller's body it reads is closed too, as on every path.
	pending, sending := reqBody, false
	st, _ := t.states.Get().(*attemptState) // reset for each attempt
	if st == nil {
		st = new(attemptState)
	}
	// queuedCounted says that the call's Waited holds the waits of the
	// attempt in st (for its turn, for a slot of its host): a panic
	// before the loop counts them (the base's, a Classifier's) leaves
	// them to the deferred function, for the Report.
	queuedCounted := true
	defer func() {
		if !queuedCounted {
			c.waited += st.queued()
		}
		if pending != nil && !(sending && st.reached) {
			pending.Close()
		}
		if c.owed {
			t.budgets.giveBack(c.hb, c.owedThrottled)
		}
		if c.paid && !(c.attempts >= c.paidFor && st.reached) {
			// A panic (an observer's, a Tracer's, GetBody's, a
			// layer's above the base) between the decision to retry
			// and the retry's send: the retry, never sent, gives back
			// what it paid, as it does when its call is canceled.
			c.giveBackRetry()
		}
		// A panic above the deadline layer (a function that keys a
		// layer, IsFailure, a QuotaStore's) skipped the release of the
		// deadline readied for the attempt, if any: its context would
		// stay registered with the caller's. (Nil on every return.)
		releaseDeadline(st, nil)
		t.putState(st)
	}()
	for n := 1; ; n++ {
		c.attempts++ // from its start: a panic during the attempt reports it too
		queuedCounted = false
		t0 := c.start // the call's one clock reading serves its first attempt
		if n > 1 {
			t0 = t.clock.now() // st was reset as the last attempt ended; the pool's and new ones are zero
		}
		c.beginAttempt(st, n, maxAttempts, t0)
		areq := c.attemptRequest(st, reqBody, sameBody && n == 1)
		if n > 1 && body.mem.ok() && areq != c.req {
			// The retry's body is a copy of the bytes: net/http's own
			// resend of it reads them too, not the caller's reader
			// (see memoryBytes.getBody).
			areq.GetBody = body.mem.data.getBody()
		}
		st.bufferMax = c.responseBuffer(n, maxAttempts, &body) // once the key is drawn
		if st.bufferMax > 0 {
			st.capture = body.cap
		}

		var resp *http.Response
		var err error
		sending = true
		if c.hedgeable(areq) {
			resp, err = c.hedged(n, areq, st)
			if run := st.run; run != nil && run.tracks {
				// The retry's GetBody waits for the body made last,
				// the attempt's or a copy's (see replayBody.next).
				body.last = run.sealBody()
			}
		} else {
			resp, err = t.inner.roundTrip(areq, st)
		}
		pending, sending = nil, false // the chain closed it, or its base has it
		releaseDeadline(st, resp)
		var dur time.Duration
		if t.observed {
			dur = time.Since(t0)
		}
		if err != nil && resp != nil {
			// A broken RoundTripper; the contract allows only one of them.
			resp.Body.Close()
			resp = nil
		}
		if err == nil && resp == nil {
			err = errNilResponse
		}
		if !st.classified {
			t.cls.classify(st, areq, resp, err, time.Now)
		}
		// A wait for the server's Retry-After ends with a ResetHost of
		// the host made since the answer came: the signal is taken now,
		// before the decision runs what the caller plugged in (a
		// BackOff, a BudgetStore), while another goroutine may reset.
		var reset *resetSignal
		if st.hasRetryAfter {
			reset = t.resets.Load()
		}
		if resp != nil && st.class == Success {
			if cause := handOver(resp); cause != nil && (!c.write || c.resendable()) {
				// The attempt's deadline fired as its headers arrived:
				// its body is cut, so the attempt timed out. (A write
				// that may not be resent keeps its answer, cut: the
				// server said it processed it.)
				resp.Body.Close()
				resp, err = nil, cause
				st.class, st.neverSent = Transient, false
				c.processed = c.write && c.key != ""
			}
		}
		if resp != nil && st.class.Retryable() {
			// A retry may follow: the writer of this attempt's body may
			// not read past what can be replayed meanwhile.
			body.freeze()
			if c.write && c.key != "" && !refusedUnprocessed(st, resp) {
				c.answeredUnproven = true
				if !st.platform && noAnswerBehind(resp.StatusCode, st.apiErr) {
					c.lost = true // a gateway's: the server may still hold the key
				}
			}
		}

		if c.learnOnSend && resp != nil {
			// The key retry got the host's answer, read below, which
			// tells whether the host reads the key (see
			// decideRetry). One without an answer (a refused dial, a
			// connection lost) teaches nothing, as one refused above
			// the base does; a retry of it may
			// (TestKeyRetryUnsentByBaseTeachesNothing).
			c.learnOnSend = false
			c.learnHonors()
		}
		if (c.write && c.key != "") || st.apiErr != nil {
			// Any error envelope of the host tells its dialect, a
			// read's too; a success only tells it of a keyed write.
			c.learnKeys(st, resp)
		}
		if resp != nil && !st.class.Retryable() && t.budgets != nil {
			t.budgets.answered(c, resp) // the host answered
		}
		// What decide took from the budget for this attempt, given back
		// below if a layer of the chain refused it and the call ends.
		paid, paidThrottled, forecast := c.paid, c.paidThrottled, c.forecast
		c.paid, c.forecast = false, false
		if paid && (c.notSent(st, c.trace, resp, err) || resp == nil && !st.reached) {
			c.owed, c.owedThrottled = true, paidThrottled
		}
		sentKey := c.key // decide adds one after a key-required answer
		delay, retry, stop := c.decide(n, maxAttempts, st, resp, err, &body)
		c.owed = false // settled below
		if retry && paid && resp == nil && (forecast && refusedLocally(err) || c.callersMistake(st, c.trace, err)) {
			// Refused as forecast, or a request that could never be
			// sent (the caller's mistake), and retried all the same (by
			// a Classifier): the retry paid for was never sent, and
			// counts against nothing.
			t.budgets.giveBack(c.hb, paidThrottled)
			paid = false // given back: not again if the call ends below
		}
		if err != nil && c.write && c.key != "" && !c.provablyUnsent(st, err) {
			c.lost = true
		}
		if retry {
			// A rewind waits for the earlier attempt's read only while
			// the wait decided on, and what the retry needs, still end
			// before the deadline: past that, no retry could follow.
			by := c.deadline
			if !by.IsZero() {
				by = by.Add(-delay).Add(-c.need)
			}
			drained := false
			if resp != nil && body.takesOver() {
				// The replay takes the caller's body over from this
				// attempt's writer, which may still be sending it (an
				// early answer): its transport then closes the
				// connection this response is read from. Drained
				// first, it is held as the server sent it.
				resp, drained = t.holdObserved(resp, &dur), true
			}
			var berr error
			reqBody, berr = c.nextBody(&body, resp, by)
			pending = reqBody
			if berr != nil && delay+c.need > 0 && errors.Is(berr, errBudgetSpent) {
				// The rewind's wait ended where the retry's would pass
				// the deadline: the retry does not fit, as below.
				retry, delay, stop = false, 0, StopDeadline
				c.giveBackRetryOf(resp)
			} else if berr != nil {
				// Give up with what the attempt produced; without a
				// response, say why no retry followed.
				retry, delay, stop = false, 0, StopBodyNotReplayable
				if callerCanceled(c.ctx, cancelOf(c.req), nil) {
					// The caller canceled the call while the rewind
					// waited for the earlier attempt's read of the body:
					// a cancel as the retryable answer came (see
					// levelOf), not a body that cannot be sent again. (A
					// deadline there, http.Client's Timeout included,
					// stays what it was.)
					stop = StopCanceled
				}
				c.giveBackRetryOf(resp)
				if resp == nil && stop == StopCanceled {
					if errors.Is(err, berr) {
						// The attempt's error says it already (a hedged
						// attempt's renewal, see replayBody.next): what
						// is new is the cancel.
						berr = errRequestCanceled
						if c.ctx.Err() != nil {
							berr = context.Cause(c.ctx)
						}
					}
					err = fmt.Errorf("%w; %w", c.beforeCancel(err), berr)
				} else if resp == nil && !errors.Is(err, berr) {
					// (The attempt's own error may say it already: a
					// hedged attempt's renewal, see replayBody.next.)
					err = fmt.Errorf("%w; %w", err, berr)
				}
			} else {
				// The body's rewind waited for the earlier attempt's read
				// (or GetBody was slow), or the response retried past
				// drained slowly (up to maxReadWait, after the checks of
				// decide): when the wait decided on would now pass the
				// deadline, give up now, as decide does, rather than
				// sleep past it.
				late := c.retryLate(delay)
				if !late && resp != nil && !drained {
					resp = t.holdObserved(resp, &dur)
					late = c.retryLate(delay)
				}
				if late {
					retry, delay, stop = false, 0, StopDeadline
					c.giveBackRetryOf(resp)
				}
			}
		}
		var unsent bool
		if !retry {
			// Given back before the observers run, which may panic.
			unsent = c.endsUnsent(st, resp, err, paid, paidThrottled)
		}
		st.stop = stop
		if st.wired {
			c.sent++
		}
		c.waited += st.queued()
		queuedCounted = true
		if c.report != nil || t.cfg.tracer != nil {
			c.outcome, c.stop = outcomeOf(c, st, err), stop
		}
		if st.class != Success && resp != nil && !retry {
			// The call returns resp, which is in: the observers' time,
			// as the breaker's (see flushClosing), is not the attempt's
			// to be cut by, nor its body's. (A success was handed over
			// above.)
			handOver(resp)
		}
		if st.declined {
			c.declined = !retry && c.declinedBare(err, lastErr, held)
		}
		t.observe(c, sentKey, st, resp, err, dur, delay, retry)
		if retry && t.observed && c.retryLate(delay) {
			// The observers, the logger or the Tracer took the time
			// the retry needed: its wait would now pass the deadline.
			// Give up now, as decide does, rather than wait into the
			// deadline and lose what this attempt got.
			retry, delay, stop = false, 0, StopDeadline
			st.stop, c.stop = stop, stop
			c.giveBackRetryOf(resp)
			unsent = c.endsUnsent(st, resp, err, paid, paidThrottled)
		}

		if resp == nil && held != nil && (st.cut != nil || c.write && (st.copyLost || st.reached && !c.provablyUnsent(st, err))) {
			// The host answered this attempt with a success whose body
			// broke as it was read (WithBufferedResponse), or this
			// attempt of a write, or one of its hedged copies (whichever
			// copy decided it), may have reached it and been processed:
			// the response held from an earlier attempt (a 503, a 429)
			// is no longer the host's last word, and would tell the
			// caller that the write was not processed, as cutByBudget
			// says. The call goes on, or ends, from this attempt.
			held.Body.Close()
			held = nil
		}
		if !retry {
			body.thaw()
			if resp == nil && held != nil && (unsent || errors.Is(err, http.ErrSkipAltProtocol) || stop == StopRetryBudget || c.cutByBudget(st, err)) {
				// A retry refused locally (breaker open, rate limited,
				// host full, retry budget spent), whose body broke,
				// declined by the base (an alternate protocol's
				// RoundTripper: the http.Transport above would send the
				// caller's request again, without the key stamped on
				// the attempts), or cut by the call's own budget
				// (WithMaxElapsed) while the caller still waits: return
				// what the last attempt produced, the answer a plain
				// client would have returned. A network error, even one
				// that proves the request never left (a refused dial),
				// is returned as an *Error, as is a cut by the caller's
				// own context.
				c.callersRequest(held)
				// A redirect retried past (by a Classifier), which
				// http.Client follows as it does one returned at once:
				// its hop has what the call left.
				c.keepRedirect(held)
				return held, nil
			}
			if held != nil {
				held.Body.Close()
			}
			if resp != nil {
				handOver(resp)
				c.callersRequest(resp)
				c.keepRedirect(resp)
				return resp, nil
			}
			if c.declinedBare(err, lastErr, held) {
				// The base declined the call (an alternate protocol's
				// RoundTripper without a connection), and no attempt
				// got anything else, nor may a hedged copy of a keyed
				// write have been processed: net/http's Transport
				// compares the sentinel itself to send the request on
				// its own, as it does under the base alone. It reads the
				// caller's body, which is left open for it.
				if body.cap != nil {
					body.cap.handBack()
				}
				return nil, err
			}
			if stop == StopRetryBudget {
				err = fmt.Errorf("%w: %w", ErrRetryBudgetExhausted, err)
			}
			if lastErr != nil && (refusedLocally(err) || errors.Is(err, http.ErrSkipAltProtocol) && !errors.Is(lastErr, http.ErrSkipAltProtocol)) {
				// A retry refused locally, or declined by the base,
				// after a network error: the call ends with both, not
				// with the refusal alone.
				err = fmt.Errorf("%w; the attempt before: %w", err, lastErr)
			}
			return nil, c.fail(n, err)
		}
		if resp != nil {
			if held != nil {
				held.Body.Close()
			}
			held, lastErr = resp, nil // drained above
		} else {
			lastErr = err
		}
		// The attempt was observed: nothing of it but held is needed any
		// more. Reset for the next attempt now, so that its parsed
		// envelope (up to three times the bytes of the body peeked) is
		// not kept while the call waits.
		c.cutRetried = c.cutRetried || st.cutRetried
		st.reset()
		st.cutRetried = c.cutRetried
		if delay > 0 {
			w0 := time.Now()
			woken, err := c.waitRetry(delay, reset)
			if err != nil {
				part := time.Since(w0) // the part of the wait that passed
				c.waited += part
				t.logCanceledWait(c, sentKey, n, maxAttempts, err, part)
				c.giveBackRetry()
				if reqBody != nil {
					pending = nil
					reqBody.Close()
				}
				if held != nil {
					held.Body.Close()
				}
				c.outcome, c.stop = OutcomeCanceled, StopCanceled
				if lastErr != nil {
					// The call ends with the cancel and the error of
					// the attempt whose retry it waited for.
					err = fmt.Errorf("%w; the attempt before: %w", err, c.beforeCancel(lastErr))
				}
				return nil, c.fail(n, err)
			}
			if woken {
				c.waited += time.Since(w0)
			} else {
				c.waited += delay
			}
		}
	}
}

// holdObserved holds resp, an attempt's response the call retries past
// (see holdResponse), and adds the time its drain took to *dur, the
// attempt's Duration, when an observer wants it: the drain reads the
// attempt's response (up to maxReadWait of a body that trickles), and its
// time is the attempt's, not lost between it and the wait that follows.
func (t *Transport) holdObserved(resp *http.Response, dur *time.Duration) *http.Response {
	if !t.observed {
		return holdResponse(resp)
	}
	t0 := time.Now()
	resp = holdResponse(resp)
	*dur += time.Since(t0)
	return resp
}

// nextBody returns the body of the call's retry (see replayBody.next),
// which must start by by, after an attempt that got resp (nil for none).
// The caller's GetBody, or the Seek that rewinds its body, may panic: resp,
// which the caller then never sees, is closed on the way out, as around
// every function a caller plugs in (see closeOnPanic).
func (c *call) nextBody(body *replayBody, resp *http.Response, by time.Time) (io.ReadCloser, error) {
	done := false
	defer closeOnPanic(resp, &done)
	rc, err := body.next(c.ctx, cancelOf(c.req), by)
	done = true
	return rc, err
}

// beforeCancel returns earlier, the error of the call's last attempt,
// which failed without a response, as the error of the call wraps it when
// the caller canceled the call after it (while it waited to retry it, or
// for its body's rewind): itself, so that errors.Is finds the reset or the
// refused dial that the host's request met; but a timeout (an attempt
// timeout, a network's) as its message only. The call ended on the
// caller's cancel, as its Report says: wrapped, the timeout made the error
// a timeout for os.IsTimeout, net.Error and http.Client's *url.Error, and
// context.DeadlineExceeded for errors.Is, and a caller that branches on a
// timeout first took its own cancel for the host's, where a plain
// client's cancel is none.
func (c *call) beforeCancel(earlier error) error {
	if isTimeout(earlier) {
		return errors.New(redactRequestError(earlier, c.req).Error())
	}
	return earlier
}

// callersMistake reports whether attempt st, which failed with err, failed
// before the server could act on it through the caller's own fault (a
// *RequestError: its body broke, a header net/http refuses to send, a
// callback of the caller's refused the connection): a request that never
// reached the host, which counts against nothing. w is the attempt's write
// trace (nil for none), which says, as for the write rule (see unsentBy),
// whether the failure came only after net/http wrote the request: a
// callback's refusal met by net/http's own resend of a request it wrote
// may come after the server processed it.
func (c *call) callersMistake(st *attemptState, w *writeTrace, err error) bool {
	return errors.As(err, new(*RequestError)) && c.unsentBy(w, st, err)
}

// callersRequest makes the caller's request the Request of resp, the
// response to a copy of it the call sent (an attempt's, a hedged copy's,
// a Tracer's: see undoSubstitution), as http.Transport makes the request
// it was given that of its response: a caller that reads resp.Request
// (its URL, its Header, its Context, to send the next page's request) must
// not see the attempt's headers (a key stamped on a write, which a request
// cloned from it would carry to another write), nor its context, which
// ends with the response's body. The call's copies are told by their URL,
// which is the caller's. A request a base RoundTripper below set (a copy
// it made with Request.Clone and headers of its own, as a signing SDK
// does; oauth2's shallow copy shares the URL, and is replaced) is kept, as
// a plain client over that base keeps it (ParseError redacts the
// credentials it carries from the server's text), but as the base would
// have made it of the caller's request (see baseCopy). Under a Tracer,
// whose context the call's attempts carry, it is a copy of the caller's
// request with that context: the request an http.Client sends after a
// redirect finds the call that got the redirect there (see
// Tracer.StartCall).
func (c *call) callersRequest(resp *http.Response) {
	switch r := resp.Request; {
	case r == nil || r == c.req:
	case r.URL != c.req.URL:
		resp.Request = c.baseCopy(r)
	case c.traced:
		resp.Request = c.req.WithContext(c.ctx)
	default:
		resp.Request = c.req
	}
}

// cutByBudget reports whether err is the cut of an attempt, st, by the
// call's budget (WithMaxElapsed, or the tighter one of WithCallOptions)
// while the caller's context is still live: the Transport's own limit, not
// an answer of the server or of the network. A write's attempt that may
// have reached the server is none: the response retried past (a 429, a
// 503) would tell the caller that the write was not processed, and the
// cut one may have been.
func (c *call) cutByBudget(st *attemptState, err error) bool {
	if !errors.Is(err, errBudgetSpent) || c.ctx.Err() != nil {
		return false
	}
	return !c.write || !st.reached || c.provablyUnsent(st, err)
}

// endsUnsent reports whether attempt st, which ends the call with resp or
// err, was not sent (see notSent): a layer of the chain refused it, or its
// request failed before the server could act on it (the body of a retry,
// from GetBody or read on from the caller's, that broke, as a GetBody that
// fails does: see body.next). The retry it was (paid, paidThrottled: what
// decide took from the retry budget for it) then costs nothing, nor does
// one whose call was canceled while it waited for the rate limiter or a
// slot of its host.
func (c *call) endsUnsent(st *attemptState, resp *http.Response, err error, paid, paidThrottled bool) bool {
	unsent := c.notSent(st, c.trace, resp, err)
	if paid && (unsent || resp == nil && !st.reached) {
		c.t.budgets.giveBack(c.hb, paidThrottled)
	}
	return unsent
}

// fail returns the *Error of a call that ends without a response after n
// attempts of its retry loop, and the hedged copies of them sent, which
// it counts as attempts too, as the call's Report does (see end). Its cause is redacted here, as the base's errors are (see
// redactRequestError), whatever its origin (a GetBody's, the cause of the
// call's context). A cause that reads as never sent (a refusal of a layer of the
// chain, a refused dial) ends a write of which an earlier attempt may have
// been processed (c.lost, c.answeredUnproven) wrapped in a lostWriteError,
// which no one may take for a write never sent.
func (c *call) fail(n int, err error) error {
	if c.lost || c.answeredUnproven {
		err = lostWrite(err)
	}
	return &Error{Method: methodOf(c.req), URL: redactURL(c.req), Attempts: n + c.hedges, Hedges: c.hedges, Err: redactRequestError(err, c.req)}
}

// end fills the call's Report and tells the Tracer that the call ended,
// with resp, or panicked.
func (c *call) end(resp *http.Response, panicked bool) {
	r := Report{
		Attempts:   c.attempts + c.hedges, // hedged copies are attempts too
		Hedges:     c.hedges,
		Waited:     c.waited,
		Duration:   time.Since(c.start),
		Outcome:    c.outcome,
		StopReason: c.stop,
	}
	if resp != nil {
		r.StatusCode = resp.StatusCode
	} else if c.attempts == 0 && !panicked {
		r.Outcome = OutcomeCanceled
	}
	switch {
	case c.report == nil:
	case c.resent:
		*c.report = r // a call of its own (see redirectKeys.take)
	default:
		c.report.fill(c.req, r)
	}
	if tr := c.cfg.tracer; tr != nil {
		done := false
		defer closeOnPanic(resp, &done)
		tr.EndCall(c.ctx, &r)
		done = true
	}
}

// hedged sends attempt n with hedging from a copy of the call on the heap,
// which the attempt's copies may use after it returns: so that passing the
// call to them does not move every call, hedged or not, to the heap. What
// the attempt did comes back to the call when it panics too, for the
// call's Report.
func (c *call) hedged(n int, areq *http.Request, st *attemptState) (*http.Response, error) {
	hc := new(call)
	*hc = *c
	defer func() { *c = *hc }()
	return hc.sendHedged(n, areq, st)
}

// beginAttempt readies st, zero, for attempt n of the call (of
// maxAttempts), started at start, field by field: a composite literal
// would build the whole state and copy it.
func (c *call) beginAttempt(st *attemptState, n, maxAttempts int, start time.Time) {
	st.number, st.maxAttempts, st.start = n, maxAttempts, start
	st.deadline, st.budget, st.ctxDeadline = c.startBy(), c.budget, c.ctxDeadline
	st.callCfg, st.resends, st.lost, st.marked = c.cfg, c.sent, c.lost, c.lost || c.answeredUnproven
	st.rate = RateLimitInfo{Limit: -1, Remaining: -1}
}

// call is the state of one RoundTrip.
type call struct {
	t        *Transport
	cfg      *config // the Transport's, or a copy with the call's options
	req      *http.Request
	ctx      context.Context // the call's: the request's, or the Tracer's
	traced   bool            // ctx is not the request's: attempts carry it
	start    time.Time
	deadline time.Time // the earlier of the context's deadline and budget; zero for none
	budget   time.Time // start+maxElapsed, or less for a hop of a redirect (see followRedirect); zero for none
	// attemptCtx is ctx without the call's Report, which the attempts
	// carry instead (see attemptValues); nil without a Report.
	attemptCtx context.Context
	// ctxDeadline is the context's deadline, read once; zero for none.
	// The contexts of the call's attempts have the same one (see
	// attemptState.ctxDeadline).
	ctxDeadline time.Time
	key         string      // the idempotency key of this call; "" for none
	ctxKey      string      // the key the caller set with WithIdempotencyKey; "" for none
	ctxBind     *keyBinding // the write ctxKey names; nil without one
	keyPending  bool        // key is to be drawn with the first attempt's request (see attemptRequest)
	stamp       bool        // key must be set on each attempt (the caller did not set it under the configured name)
	callerKey   bool        // the caller set the key: its statement that the host honors keys
	ownKey      bool        // the key is the caller's, its word for the host or not (carried on by http.Client through a redirect): answers to it teach nothing of the host's other writes (see honorsKeys)
	keyRetry    bool        // a key-required answer was already retried with a new key
	learnOnSend bool        // the host is learned to honor keys once the host answers the key retry (see decideRetry); the call takes it so meanwhile
	cutRetried  bool        // an attempt failed with a header block cut short, which is retried once per call (see cutHeaders)
	lost        bool        // an attempt of this keyed write (or of the call whose 307 or 308 it follows under its key: see call.inheritMarks) got no answer after it may have been sent (a gateway's 502 or 504 is none: see noAnswerBehind): the server may still hold its key
	processed   bool        // an attempt of this keyed write got a success: a later one that is no replay proves the host ignores keys
	write       bool        // the method is not idempotent: the write rule applies
	header      http.Header
	headerFor   bool          // header was built for a host known to honor keys
	trace       *writeTrace   // proves an attempt of an unproven write was never written; nil when not needed
	capture     *captureBody  // the request body's capture, when it has no GetBody; nil for none
	mem         memoryBody    // the request body in memory, when it has a GetBody, for hedged copies (see copyBody); zero for none
	keyReq      *http.Request // the request the functions that key a layer read, once needed (see keyRequest)
	bo          backoff.BackOff
	hb          *hostBudget // the host's retry budget, once looked up
	// need is what the call's next attempt must have left of it when it
	// starts (see decide): the rate limiter and WithMaxInFlight hold it
	// no later than that before its deadline. Zero for none.
	need time.Duration
	// paid says that decide took the next attempt's cost from hb, as a
	// throttled retry when paidThrottled: given back if it is not sent,
	// or refused by a layer of the chain and not retried. forecast says
	// that decide let it go at once because the breaker or the rate
	// limiter will refuse it: given back when they do, retried or not.
	// paidFor is the number of the attempt paid for.
	paid, paidThrottled, forecast bool
	paidFor                       int
	// owed says that decide is deciding after an attempt whose cost it
	// took before (paid), and that was never sent: given back, as a
	// throttled retry when owedThrottled, by run's deferred function if
	// decide panics (a BackOff's, a SharedBudget's, a function that keys
	// a layer), as it is after decide when the call ends without a panic.
	owed, owedThrottled bool

	// answeredUnproven says that an attempt of this keyed write (or of
	// the call whose 307 or 308 it follows under its key: see
	// call.inheritMarks) was answered with a failure that does not prove
	// it unprocessed (a 5xx, a 429 that carries a Postato platform error;
	// not another 429: see refusedUnprocessed): the server may have
	// processed it.
	answeredUnproven bool

	// declined says that the call ends after its last attempt with the
	// bare http.ErrSkipAltProtocol of its base (see declinedBare), which
	// the http.Transport above then sends itself: no failure of the
	// call, for its record (see Transport.observe).
	declined bool

	// resent says that the request follows a redirect whose hop an
	// earlier request took (see redirectKeys.take): a call of its own,
	// not a hop, for its Report.
	resent bool

	// What the call did, for its Report and Tracer.
	report   *Report
	attempts int
	hedges   int
	waited   time.Duration
	outcome  Outcome
	stop     StopReason
	sent     int // requests sent to the wire, for AttemptInfo.ResendCount
}

// sendCtx returns the context of the call's attempts and hedged copies:
// the call's, without its Report when it has one (see attemptValues).
func (c *call) sendCtx() context.Context {
	if c.attemptCtx != nil {
		return c.attemptCtx
	}
	return c.ctx
}

// hostBudget returns the retry budget of the call's host. The budget is
// keyed by BreakerSettings.Key alone (see budgetKey): only that function
// is given the copy of the request made for the functions that key a
// layer (see keyRequest). Under WithRateLimitKey alone, the lookup (a
// success's, to deposit: see budgetSet.answered) reads the caller's
// request, and makes no copy.
func (c *call) hostBudget() *hostBudget {
	if c.hb == nil {
		req := c.req
		if c.t.budgets.keyFn != nil {
			req = c.keyRequest()
		}
		c.hb = c.t.budgets.get(req)
	}
	return c.hb
}

// keyRequest returns the caller's request, as the functions that key a
// layer (BreakerSettings.Key, WithRateLimitKey) are given it outside an
// attempt (to decide a retry, to allow a hedged copy, see keyRequestOf).
// They may read its body through its GetBody (the examples' OpenAI recipe
// names the model so), and the caller's GetBody may rewind the one reader
// that the attempt sent, whose writer may still read it then (an early
// answer, a slow upload): its bytes sent twice, or out of order, where a
// plain client never reads a body again once handed to its transport. A
// body in memory is given them as a copy of the request whose GetBody
// reads its bytes without moving that reader (see memoryBody.keyGetBody),
// made once; any other body, or no key function, the caller's request.
func (c *call) keyRequest() *http.Request {
	if c.keyReq == nil {
		c.keyReq = c.keyRequestOf(c.req)
	}
	return c.keyReq
}

// keyRequestOf returns req, an attempt's request, or a copy of it for the
// functions that key a layer (see keyRequest): one whose GetBody reads the
// bytes of a body in memory when req carries the caller's GetBody.
func (c *call) keyRequestOf(req *http.Request) *http.Request {
	if !c.mem.ok() || c.t.cfg.breaker.Key == nil && c.t.cfg.rateLimitKey == nil || req.Body != c.req.Body {
		return req
	}
	r := *req
	r.GetBody = c.mem.keyGetBody()
	return &r
}

// setDeadline sets the call's budget and deadline (see followRedirect for
// a hop of a redirect).
func (c *call) setDeadline() {
	if c.cfg.maxElapsed > 0 {
		c.budget = c.start.Add(c.cfg.maxElapsed)
		c.deadline = c.budget
	}
	var ok bool
	if c.ctxDeadline, ok = c.ctx.Deadline(); !ok {
		c.ctxDeadline = time.Time{}
	}
	if d := c.ctxDeadline; !d.IsZero() && (c.deadline.IsZero() || d.Before(c.deadline)) {
		c.deadline = d
	}
}

// notSent reports whether an attempt that ended with err and no response
// (w its write trace, nil for none) was refused by a layer of the chain,
// or declined by the base (see attemptState.declined), or its request
// failed before the server could act on it (the caller's mistake, a
// retry's broken body): the retry it was costs nothing.
func (c *call) notSent(st *attemptState, w *writeTrace, resp *http.Response, err error) bool {
	return resp == nil && (refusedLocally(err) || st.declined || c.callersMistake(st, w, err))
}
