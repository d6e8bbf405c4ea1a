package resilient

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// errPanicked is the error a Tracer's attempt ends with when the layer
// below it panicked.
var errPanicked = errors.New("resilient: RoundTripper panicked")

// A Tracer follows a Transport's calls and their attempts, for
// instrumentation such as OpenTelemetry (see the resilientotel module). The
// Transport calls it synchronously, on the goroutine of the call or of a
// hedged copy: its methods must be safe for concurrent use and must not
// block. Set it with WithTracer.
type Tracer interface {
	// StartCall is called when a call starts, before its first attempt.
	// The context it returns is the call's: its attempts' contexts derive
	// from it, Attempt and EndCall receive it, and the call's response
	// carries it (its Request is the caller's request with that context),
	// so that the request an http.Client sends after a redirect (whose
	// Response is that response) leads back to the call that got it. A
	// nil Context returned means ctx. A request refused before any
	// attempt, one without a URL or a Header (see RequestError), starts no
	// call: the Tracer sees nothing of it.
	StartCall(ctx context.Context, req *http.Request) context.Context

	// StartAttempt is called when an attempt is about to reach the wire,
	// after the rate limiter and the breaker let it through: attempts
	// refused locally are only reported to Attempt. It returns the request
	// to send in place of req, such as a copy with a context and headers
	// of its own (it must not modify req), and a function that the
	// Transport calls once, when the attempt's response headers arrive or
	// it fails; for a response whose body the Transport reads within the
	// attempt (see WithBufferedResponse), once it has read it, with the
	// response (its body closed) and the read's error if that failed: its
	// headers and status code were received. That is the only case of a
	// response given with an error: a response that the base RoundTripper
	// returned with an error, which the Transport drops, is given as none.
	// The error is redacted as Attempt.Err is (its URLs without query or
	// user information, the request's credentials it echoes REDACTED),
	// errors.Is and errors.As still reaching its causes.
	StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error))

	// Attempt is called once per attempt, after it ended and the Transport
	// decided what follows, with the call's context and the attempt's
	// record, as the functions set with WithObserver are.
	Attempt(ctx context.Context, a Attempt)

	// EndCall is called when RoundTrip returns, with the call's context and
	// its report; and when a panic goes through RoundTrip after StartCall
	// returned, before the panic goes on, with a report whose Outcome is
	// empty (see Report).
	EndCall(ctx context.Context, r *Report)
}

// AttemptInfo describes an attempt about to reach the wire.
type AttemptInfo struct {
	// Number is the attempt's number in the retry loop: 1 for the first.
	// A hedged copy has the number of the attempt it copies.
	Number int
	// Hedge is 0 for an attempt, n for the n-th hedged copy of it sent
	// (copies that never reach the wire are not numbered; a copy that the
	// base then declines with http.ErrSkipAltProtocol, never sent, gives
	// its number back to the next copy sent).
	Hedge int
	// ResendCount counts the requests of the call sent to the wire before
	// this one, retries and hedged copies alike (OpenTelemetry's
	// http.request.resend_count).
	ResendCount int
}

// WithTracer makes the Transport report its calls and attempts to tr (one
// tracer per Transport; a later WithTracer replaces an earlier one). A nil
// tr removes it, and so does a tr that holds a nil pointer or func (a
// variable of a Tracer type left unset), whose methods would fail every
// call.
func WithTracer(tr Tracer) Option {
	if holdsNil(tr) {
		tr = nil
	}
	return func(c *config) {
		perTransport(c, "WithTracer")
		c.tracer = tr
	}
}

// WithContextObserver adds fn to the functions called once per attempt, as
// with WithObserver, with the call's context: the request's, or the one a
// Tracer's StartCall returned.
func WithContextObserver(fn func(context.Context, Attempt)) Option {
	return func(c *config) {
		perTransport(c, "WithContextObserver")
		if fn != nil {
			c.ctxObservers = append(c.ctxObservers, fn)
		}
	}
}

// startCall returns the call's context from tr's StartCall (c.ctx, when it
// returns none). When StartCall panics, the call ends before the panic
// goes on, as a call a panic goes through does (see Report), but for the
// Tracer, whose call never started: the request body is closed, as a
// RoundTripper must on every path, and the Report filled, with no attempt.
func (c *call) startCall(tr Tracer) context.Context {
	done := false
	defer func() {
		if done {
			return
		}
		if c.req.Body != nil {
			c.req.Body.Close()
		}
		if c.report != nil {
			c.report.fill(c.req, Report{Duration: time.Since(c.start)})
		}
	}()
	ctx := tr.StartCall(c.ctx, c.req)
	done = true
	if ctx == nil {
		return c.ctx // as a nil request from StartAttempt is the attempt's own
	}
	return ctx
}

// tracerMiddleware reports each attempt that reaches the wire to tr; it
// sits right above the base RoundTripper.
func tracerMiddleware(tr Tracer) Middleware {
	if tr == nil {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &tracerTransport{next: next, tr: tr}
	}
}

type tracerTransport struct {
	next http.RoundTripper
	tr   Tracer
}

func (t *tracerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTripAttempt(req, nil)
}

func (t *tracerTransport) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	var info AttemptInfo
	if st != nil {
		info = AttemptInfo{Number: st.number, Hedge: st.hedge, ResendCount: st.resends + st.hedge}
		st.wired = true
		// Not sent until the Tracer lets it go: a Tracer that panics
		// in StartAttempt sends nothing (see attemptState.reached).
		st.reached = false
	}
	sreq, end := t.startAttempt(req, info)
	if st != nil {
		st.reached = true
	}
	if sreq == nil {
		sreq = req
	}
	if end == nil {
		resp, err := t.next.RoundTrip(sreq)
		return undoSubstitution(resp, sreq, req), err
	}
	ended := false
	defer func() {
		if !ended { // next panicked: the attempt ends all the same
			end(nil, errPanicked)
		}
	}()
	resp, err := t.next.RoundTrip(sreq)
	ended = true
	if st != nil {
		st.noteDecline(err) // before end, which may panic
	}
	resp = undoSubstitution(resp, sreq, req)
	if st != nil && st.bufferMax > 0 && err == nil && resp != nil && bufferable(req, resp, st) {
		// The classifier reads the body within the attempt
		// (WithBufferedResponse): the span ends once it has.
		st.traceEnd = end
		return resp, nil
	}
	terr := err
	if err != nil {
		// Redacted as every record of it is: a Tracer may keep its text.
		terr = redactRequestError(err, req)
	}
	endClosing(end, resp, terr)
	return resp, err
}

// undoSubstitution makes req the Request of resp where it is sreq, the
// request the Tracer had sent in req's place (a copy with its headers,
// such as a traceparent): the layers above, and the caller, see the
// request they sent (see call.callersRequest).
func undoSubstitution(resp *http.Response, sreq, req *http.Request) *http.Response {
	if resp != nil && sreq != req && resp.Request == sreq {
		resp.Request = req
	}
	return resp
}

// endClosing ends a Tracer's span of an attempt with end; when end panics
// (a span processor, an exporter), the body of resp, which the caller
// never gets, is closed on the way out (see closeOnPanic).
func endClosing(end func(*http.Response, error), resp *http.Response, err error) {
	done := false
	defer closeOnPanic(resp, &done)
	if err != nil {
		// A response with an error, which the RoundTripper contract
		// forbids: the Transport drops it, and so does the Tracer.
		end(nil, err)
	} else {
		end(resp, err)
	}
	done = true
}

// startAttempt returns what the Tracer's StartAttempt returns for req.
// When it panics, req's body, which no layer below sees, is closed before
// the panic goes on, as a RoundTripper must on every path.
func (t *tracerTransport) startAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	done := false
	defer func() {
		if !done && req.Body != nil {
			req.Body.Close()
		}
	}()
	sreq, end := t.tr.StartAttempt(req, info)
	done = true
	return sreq, end
}
