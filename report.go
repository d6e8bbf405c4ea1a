package resilient

import (
	"context"
	"net/http"
	"time"
)

// Report is what a call did, filled when RoundTrip returns for a call made
// with a context from WithReport: for successes too. When http.Client
// follows redirects, each hop is a RoundTrip of its own; the Report then
// tells the whole call: the counts, waits and durations of its hops added
// up, and the outcome, status and stop reason of the last one.
//
// When a panic goes through RoundTrip (from the base RoundTripper, a
// Classifier, an observer, a Tracer), the Report is filled all the same
// before the panic goes on to the caller: with what the call did until
// then (Attempts counts the attempt that panicked), StatusCode 0, and an
// empty Outcome and StopReason, for no attempt's result was returned.
type Report struct {
	// Attempts counts the attempts of the call, hedged copies sent
	// (Hedges) and attempts refused locally (breaker open, rate limited,
	// host full: see WithMaxInFlight) included, as is a retry that the
	// base declined (http.ErrSkipAltProtocol), which sends nothing but has
	// its Attempt record and is counted by the call's *Error alike; a
	// hedged copy the base declined is none (see Hedges).
	Attempts int
	// Redirects counts the redirects http.Client followed before the
	// last hop: the RoundTrips of the call, less one.
	Redirects int
	// Hedges counts the hedged copies sent (see WithHedging): those that
	// reached the base RoundTripper, and that it did not decline with
	// http.ErrSkipAltProtocol, which sends nothing. A copy that never did
	// (refused by the rate limiter, the breaker or the limit of attempts
	// in flight, whose attempt was decided while it waited for the rate
	// limiter, or whose Tracer's StartAttempt panicked) or that the base
	// declined is neither a hedge nor an attempt, and gives back what it
	// spent. A copy still in the base when its attempt is decided is
	// counted then, as sent: should the base decline it after, it gives
	// back what it spent, but the call has returned, and it stays counted.
	Hedges int
	// Waited is the time spent waiting: backoff and Retry-After between
	// attempts, the client-side rate limiter's waits, and the waits for a
	// slot of the host (WithMaxInFlight), those refused at their deadline
	// included.
	Waited time.Duration
	// Duration is the whole call, from RoundTrip to its return (the sum
	// of its hops' when it was redirected).
	Duration time.Duration
	// Outcome is the outcome of the call's last attempt. It is the
	// outcome of the response returned, unless the call returned the
	// response of an earlier attempt, as it does when the attempts after
	// it were refused locally (OutcomeCircuitOpen, OutcomeRateLimited,
	// OutcomeTooManyInFlight), failed before they were sent (their body
	// broke), were declined by the base (http.ErrSkipAltProtocol:
	// OutcomePermanent, as the declined attempt's record says) or were
	// cut by the call's budget (WithMaxElapsed), or when
	// the retry budget refused a retry after one that failed without an
	// answer: the Outcome is then the last attempt's, and StatusCode that
	// response's status (a 503, then the breaker opened: circuit_open
	// with 503; a 429, then a retry cut by the call's budget: transient
	// with 429). A retry the retry budget refuses is no attempt: the
	// Outcome is that of the attempt before it, and StopReason says
	// StopRetryBudget.
	Outcome Outcome
	// StatusCode is the status of the response returned; 0 for none.
	StatusCode int
	// StopReason says why the call ended after a retryable outcome; ""
	// otherwise.
	StopReason StopReason
}

// WithReport returns a copy of ctx that makes the Transport fill r when a
// call made with it returns, or panics (see Report). r must not be read before then, nor shared by
// calls that run at the same time. A hop of a redirect (a request whose
// Response field http.Client set to the redirect that made it) adds to r;
// any other call overwrites it, a hop's request sent again included (the
// Request of a redirected call's response, sent anew: a call of its own,
// as its budget is, see WithMaxElapsed). The calls made with the context of the
// call's attempts (those of a Transport below this one, New(New(base)),
// a hedged copy's included) are not the caller's call, and leave r alone.
// A WithReport on a context that carries one already replaces it: the
// calls made with the new context fill r alone, not the outer Report.
// A nil ctx panics, as it does with context.WithValue.
func WithReport(ctx context.Context, r *Report) context.Context {
	mustContext("WithReport", ctx)
	cv := derivedValues(ctx)
	cv.report = r
	return context.WithValue(ctx, callKey{}, &cv)
}

// fill records r, what one RoundTrip did, in the caller's Report: it
// overwrites it, or adds to it when req is a hop of a redirect: a request
// whose Response names no request (its first request unknown), that
// follows its Response (see followsRedirect), or whose Response is a
// redirect of the status rep holds, that of the RoundTrip before it (a
// middleware outside the Transport, or a base below it, may have sent
// each hop to another URL than the Location resolved against the
// Response's Request: another host, another path), not a request cloned
// from one that did and sent to another URL, after a call that ended
// with another status.
func (rep *Report) fill(req *http.Request, r Report) {
	if prev := req.Response; prev != nil && (prev.Request == nil || prev.Request.URL == nil || req.URL == nil ||
		prev.StatusCode/100 == 3 && prev.StatusCode == rep.StatusCode || followsRedirect(req, prev.Request)) {
		r.Redirects += rep.Redirects + 1
		r.Attempts += rep.Attempts
		r.Hedges += rep.Hedges
		r.Waited += rep.Waited
		r.Duration += rep.Duration
	}
	*rep = r
}
