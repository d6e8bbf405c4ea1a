package resilientotel

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// callKey is the context key under which a call's state is found.
type callKey struct{}

// call is the state of one call (one RoundTrip), and its context: the
// caller's, with the call's span.
type call struct {
	context.Context
	caller context.Context // the caller's context, without the call's span

	in        *instrumentation
	span      trace.Span
	names     methodNames
	clientNm  string // the CLIENT spans' name
	offset    int    // requests sent by the calls this one follows (redirects)
	sent      atomic.Int64
	nattrs    int
	attrs     [6]attribute.KeyValue // method, server, url: the CLIENT spans' first attributes
	startOpts [2]trace.SpanStartOption
	baseSet   attribute.Set // method and server, for the metrics
	baseOnce  sync.Once
	template  string
	errMu     sync.Mutex
	lastError string // error.type of the last attempt, when it had no response
	declined  bool   // the call ends with the bare sentinel of a base that declined it (see noteDeclined)

	// The wait before a retry, decided but not recorded yet (see
	// retryWait): nil for none.
	wait atomic.Pointer[retryWait]

	// The CLIENT spans that ended but were not handed to the span
	// processors yet (see attempt.end), and whether the call ended.
	endMu   sync.Mutex
	pending []pendingEnd
	pendBuf [2]pendingEnd
	closed  bool

	// The hedged copies whose resilient.hedge event waits for the call's
	// end (see holdHedge), under endMu, and whether any ever was.
	hedgesHeld []*attempt
	hedged     atomic.Bool
}

// pendingEnd is a CLIENT span that ended at time at, as attempt number of
// its call, and that the span processors have not seen end yet.
type pendingEnd struct {
	span   trace.Span
	at     time.Time
	number int
}

// endLater keeps span, which ended at time at, as attempt number, for
// flush to end, and reports whether it did: not once the call ended.
func (c *call) endLater(span trace.Span, at time.Time, number int) bool {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	if c.closed {
		return false
	}
	if c.pending == nil {
		c.pending = c.pendBuf[:0]
	}
	c.pending = append(c.pending, pendingEnd{span: span, at: at, number: number})
	return true
}

// flush ends, with the times they ended at, the CLIENT spans kept by
// endLater of the call's attempts up to number; with closing, all of them,
// and the spans of the attempts that end after it end at once. It calls
// the span processors outside the lock.
func (c *call) flush(number int, closing bool) {
	var buf [4]pendingEnd
	due := buf[:0]
	c.endMu.Lock()
	c.closed = c.closed || closing
	kept := c.pending[:0]
	for _, p := range c.pending {
		if closing || p.number <= number {
			due = append(due, p)
		} else {
			kept = append(kept, p)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	c.endMu.Unlock()
	endAll(due)
}

// endAll ends the spans of due, in order, with the times they ended at.
// When a span processor panics as one ends, the others end all the same
// before the panic goes on: they left the call's pending spans, and
// nothing else would end them.
func endAll(due []pendingEnd) {
	if len(due) == 0 {
		return
	}
	defer endAll(due[1:])
	due[0].span.End(trace.WithTimestamp(due[0].at))
}

// Value returns the call for callKey, else what the caller's context holds.
func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// AfterFunc registers f to run once the call's context is done, through
// the caller's context's AfterFunc when it has one (a Transport's attempt,
// for a Transport nested in another): a context the Transport derives
// from the call's with a cancel follows it without a goroutine of its
// own, as it would follow the caller's (see afterFuncCtx).
func (c *call) AfterFunc(f func()) (stop func() bool) { return afterFunc(c.caller, f) }

// callOf returns the call of in whose context ctx is, or derives from; nil
// for none, and for the call of another instrumentation: that of a
// Transport whose attempt's context reached this one (a Transport nested in
// another, a base that sends calls of its own with the attempt's context).
func (in *instrumentation) callOf(ctx context.Context) *call {
	if c, _ := ctx.Value(callKey{}).(*call); c != nil && c.in == in {
		return c
	}
	return nil
}

// newCall returns the state of a call of req, without its span.
func (in *instrumentation) newCall(ctx context.Context, req *http.Request) *call {
	c := &call{Context: ctx, caller: ctx, in: in}
	var original string
	c.names, original = in.method(req.Method)
	c.clientNm = c.names.client
	addr, port := serverAddr(req)
	a := c.attrs[:0]
	a = append(a, semconv.HTTPRequestMethodKey.String(c.names.attr))
	if original != "" {
		a = append(a, semconv.HTTPRequestMethodOriginalKey.String(original))
	}
	a = append(a, semconv.ServerAddressKey.String(addr))
	if port > 0 {
		a = append(a, semconv.ServerPortKey.Int(port))
	}
	a = append(a, semconv.URLFullKey.String(redactedURL(req)))
	if in.template != nil {
		// The caller's template may keep bytes of the URL, which a
		// redirect makes the server's: bounded and made UTF-8 as
		// url.full is (see boundedUTF8).
		if c.template = boundedUTF8(in.template(req), maxURLLen); c.template != "" {
			a = append(a, semconv.URLTemplateKey.String(c.template))
			c.clientNm = c.names.client + " " + c.template
		}
	}
	c.nattrs = len(a)
	if req.Response != nil && req.Response.Request != nil {
		// A request an http.Client sends after a redirect: its resends
		// count on from the call that got the redirect.
		if prev := in.callOf(req.Response.Request.Context()); prev != nil {
			c.offset = prev.offset + int(prev.sent.Load())
		}
	}
	return c
}

// metricSet returns the attributes of the call's metrics: method and
// server.
func (c *call) metricSet() attribute.Set {
	c.baseOnce.Do(func() {
		var kv [3]attribute.KeyValue
		n := 0
		for _, a := range c.attrs[:c.nattrs] {
			switch a.Key {
			case semconv.HTTPRequestMethodKey, semconv.ServerAddressKey, semconv.ServerPortKey:
				kv[n] = a
				n++
			}
		}
		c.baseSet = attribute.NewSet(kv[:n]...)
	})
	return c.baseSet
}

// StartCall starts the call's INTERNAL span; it implements resilient.Tracer.
//
// While the calls are idle (see idleCall), the span starts without its
// attributes, which a tracer that makes no span does not read: they are
// set on it after it started when it is made all the same (the first calls
// after an SDK is installed, whose sampler does not see them). The tracer
// is still called for every call: the global one delegates to the SDK
// installed later, and eBPF auto-instrumentation hooks it.
func (in *instrumentation) StartCall(ctx context.Context, req *http.Request) context.Context {
	if in.passthrough {
		return ctx // no call state: nothing is recorded
	}
	var (
		c    *call
		sctx context.Context
		span trace.Span
	)
	if in.idle.Load() {
		names, _ := in.method(req.Method)
		sctx, span = in.start(ctx, names.call, in.internal[:]...)
	} else {
		c = in.newCall(ctx, req)
		c.startOpts = [2]trace.SpanStartOption{in.internal[0], trace.WithAttributes(c.attrs[:c.nattrs]...)}
		sctx, span = in.start(ctx, c.names.call, c.startOpts[:]...)
	}
	if in.idleCall(ctx, span) {
		// As the no-op providers: only propagation is left to do. The
		// span, which records nothing, ends now, as every span started
		// must.
		span.End()
		return ctx
	}
	if c == nil {
		c = in.newCallOf(ctx, req, span)
		c.startOpts[1] = trace.WithAttributes(c.attrs[:c.nattrs]...)
		span.SetAttributes(c.attrs[:c.nattrs]...)
	}
	c.Context, c.span = sctx, span
	c.startOpts[0] = in.client // the attempts' options, when they have no resend count
	return c
}

// start starts a span with in's tracer. When the tracer makes no span and
// hides the span context of ctx behind an empty one (the deprecated
// trace.NewNoopTracerProvider's, under a span that records), it returns ctx
// itself with that span: the caller's span context is still the one
// propagated, as a no-op tracer owes.
func (in *instrumentation) start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	sctx, span := in.tracer.Start(ctx, name, opts...)
	if !span.SpanContext().IsValid() {
		return ctx, span
	}
	return sctx, span
}

// newCallOf returns the state of a call of req whose span, started
// already, is span (see StartCall). When Config.URLTemplate panics, span
// ends before the panic goes on, as every span started must: the call it
// would have been ended by (EndCall) has no state to find it.
func (in *instrumentation) newCallOf(ctx context.Context, req *http.Request, span trace.Span) *call {
	done := false
	defer func() {
		if !done {
			endCutShort(span)
		}
	}()
	c := in.newCall(ctx, req)
	done = true
	return c
}

// endCutShort ends span, which a panic of the code a Config plugs in (its
// Propagator, its URLTemplate) cut short before anything could end it, as
// a span that failed: error.type _OTHER and an Error status, as the
// panics that go through a call leave it (see EndCall).
func endCutShort(span trace.Span) {
	span.SetAttributes(semconv.ErrorTypeKey.String(errOther))
	span.SetStatus(codes.Error, errOther)
	span.End()
}

// idleCall reports whether a call started in ctx, whose span is span,
// records nothing: the tracer made no span, and none of the call's
// instruments is enabled. A tracer that makes no span hands back the span
// context of ctx, not recording (the global tracer before an SDK is
// installed, a no-op tracer); one that makes a span gives it a span ID of
// its own, recording or not (an SDK's span not sampled), and so does the
// global tracer once it delegates to an SDK, or to eBPF
// auto-instrumentation. The answer is kept, for the calls that start next
// (see StartCall) and for the attempts that come without a call (see
// StartAttempt): those of an idle call, whose context is the caller's.
func (in *instrumentation) idleCall(ctx context.Context, span trace.Span) bool {
	sc, parent := span.SpanContext(), trace.SpanContextFromContext(ctx)
	idle := !span.IsRecording() && sc.SpanID() == parent.SpanID() && sc.TraceID() == parent.TraceID() &&
		!in.m.callEnabled(ctx)
	if in.idle.Load() != idle { // no store while it holds: concurrent calls share the cache line
		in.idle.Store(idle)
	}
	return idle
}

// Attempt records what the Transport did around one attempt: its waits and
// refusals, as events of the call's span and as metrics; it implements
// resilient.Tracer.
func (in *instrumentation) Attempt(ctx context.Context, a resilient.Attempt) {
	c := in.callOf(ctx)
	if c == nil {
		return
	}
	if a.StatusCode == 0 {
		if declinedErr(a.Err) {
			c.errMu.Lock()
			c.noteDeclined(&a)
			c.errMu.Unlock()
		} else {
			errType := errorType(a.Err)
			c.errMu.Lock()
			c.lastError = errType
			c.errMu.Unlock()
		}
	}
	recording := c.span != nil && c.span.IsRecording()
	now := time.Now()
	if c.wait.Load() != nil {
		// The attempt the call waited for: the wait ended when it
		// started, before its own waits.
		c.endWait(now.Add(-a.Duration))
	}
	if a.LocalWait > 0 {
		if recording {
			// The wait came first in the attempt: it started when the
			// attempt did.
			c.span.AddEvent(EventWait, trace.WithTimestamp(now.Add(-a.Duration)), trace.WithAttributes(
				AttrWaitKind.String(WaitRateLimit), AttrWaitDuration.Float64(a.LocalWait.Seconds()),
				AttrAttemptNumber.Int(a.Number)))
		}
		if h := in.m.rateLimitWait; h.Enabled(ctx) {
			h.Record(ctx, a.LocalWait.Seconds(), metric.WithAttributeSet(c.metricSet()))
		}
	}
	if a.SlotWait > 0 && recording {
		// After the rate limiter's wait, if any: the slot is taken
		// below it.
		c.span.AddEvent(EventWait, trace.WithTimestamp(now.Add(-a.Duration).Add(a.LocalWait)), trace.WithAttributes(
			AttrWaitKind.String(WaitMaxInFlight), AttrWaitDuration.Float64(a.SlotWait.Seconds()),
			AttrAttemptNumber.Int(a.Number)))
	}
	refusal := func(event string, counter metric.Int64Counter) {
		if recording {
			c.span.AddEvent(event, trace.WithTimestamp(now), trace.WithAttributes(AttrAttemptNumber.Int(a.Number)))
		}
		if counter.Enabled(ctx) {
			counter.Add(ctx, 1, metric.WithAttributeSet(c.metricSet()))
		}
	}
	switch a.Outcome {
	case resilient.OutcomeCircuitOpen:
		refusal(EventCircuitOpen, in.m.breakerRefusals)
	case resilient.OutcomeRateLimited:
		refusal(EventRateLimited, in.m.rateLimitRefusals)
	case resilient.OutcomeTooManyInFlight:
		refusal(EventTooManyInFlight, in.m.inFlightRefusals)
	}
	if a.StopReason == resilient.StopRetryBudget {
		refusal(EventRetryBudgetExhausted, in.m.budgetRefusals)
	}
	if a.Retry && a.Delay > 0 && recording {
		kind := WaitBackoff
		if a.RetryAfter > 0 {
			kind = WaitRetryAfter
		}
		c.wait.Store(&retryWait{kind: kind, at: now, planned: a.Delay, number: a.Number + 1})
	}
	// The CLIENT spans of the attempt and of those before it end now,
	// but for one whose response the Transport reads still, under the
	// attempt's deadline: an error it may hold for give-up, or return.
	// A success was handed over; a response retried was read already,
	// before its retry's wait.
	upTo := a.Number
	if a.StatusCode != 0 && a.Outcome != resilient.OutcomeSuccess && !a.Retry {
		upTo--
	}
	c.flush(upTo, false)
}

// EndCall ends the call's span and records the call's metrics; it
// implements resilient.Tracer.
func (in *instrumentation) EndCall(ctx context.Context, r *resilient.Report) {
	c := in.callOf(ctx)
	if c == nil {
		return
	}
	errType := ""
	declined := false
	status := r.StatusCode
	if !validStatus(status) {
		status = 0 // no status code (see validStatus)
	}
	switch {
	case r.StatusCode != 0:
		errType = statusErrorType(r.StatusCode) // "" for 100 to 399
	case r.StatusCode == 0 && r.Outcome == "":
		// A panic went through the call (see resilient.Report): not
		// the error of an attempt before it.
		errType = errOther
	case r.StatusCode == 0 && c.isDeclined():
		// The base declined the call, returned with the bare sentinel:
		// net/http sends the request itself, out of the call's sight.
		// No failure, whatever the caller's context says since.
		declined = true
	case r.StatusCode == 0 && c.Err() != nil:
		// The caller's context ended, maybe during a wait, after an
		// attempt that got a response.
		errType = errorType(c.Err())
	case r.StatusCode == 0:
		c.errMu.Lock()
		errType = c.lastError
		c.errMu.Unlock()
		if errType == "" {
			errType = errorTypeOfOutcome(r.Outcome, r.StopReason)
		}
	}
	// A wait before a retry that never came: the caller gave up during
	// it, which ended now.
	c.endWait(time.Now())
	flushed := false
	defer func() {
		if !flushed && c.span != nil {
			// A span processor panicked as a CLIENT span ended: the
			// call's span ends all the same before the panic goes on,
			// as a span a panic went through.
			endCutShort(c.span)
		}
	}()
	if c.hedged.Load() {
		// Before the CLIENT spans end: a span processor that panics
		// there leaves the call's span with its events all the same.
		c.addHeldHedges()
	}
	c.flush(0, true) // the call's CLIENT spans end before it
	flushed = true
	if c.span == nil {
		return
	}
	if c.span.IsRecording() {
		attrs := []attribute.KeyValue{
			AttrAttempts.Int(r.Attempts),
			AttrHedges.Int(r.Hedges),
			AttrWaitDuration.Float64(r.Waited.Seconds()),
		}
		if r.Outcome != "" {
			attrs = append(attrs, AttrOutcome.String(string(r.Outcome)))
		}
		if r.StopReason != "" {
			attrs = append(attrs, AttrStopReason.String(string(r.StopReason)))
		}
		if status > 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(status))
		}
		if declined {
			attrs = append(attrs, AttrDeclined.Bool(true))
		}
		if errType != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
			if status > 0 {
				c.span.SetStatus(codes.Error, "")
			} else {
				c.span.SetStatus(codes.Error, errType)
			}
		}
		c.span.SetAttributes(attrs...)
	}
	c.span.End()

	m := &in.m
	if retries := r.Attempts - r.Hedges - 1; retries > 0 && m.retries.Enabled(ctx) {
		m.retries.Record(ctx, int64(retries), metric.WithAttributeSet(c.metricSet()))
	}
	if r.Hedges > 0 && m.hedges.Enabled(ctx) {
		m.hedges.Add(ctx, int64(r.Hedges), metric.WithAttributeSet(c.metricSet()))
	}
	if r.Waited > 0 && m.callWait.Enabled(ctx) {
		m.callWait.Record(ctx, r.Waited.Seconds(), metric.WithAttributeSet(c.metricSet()))
	}
	if m.callDuration.Enabled(ctx) {
		set := c.metricSet()
		attrs := set.ToSlice()
		if r.Outcome != "" {
			attrs = append(attrs, AttrOutcome.String(string(r.Outcome)))
		}
		if status > 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(status))
		}
		if declined {
			attrs = append(attrs, AttrDeclined.Bool(true))
		}
		if errType != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		}
		m.callDuration.Record(ctx, r.Duration.Seconds(), metric.WithAttributes(attrs...))
	}
}

// retryWait is the wait before a retry, from the call's decision to retry
// until the retry's attempt starts: the event of it is added to the call's
// span when the wait ends (see endWait), with the time it lasted. Added as
// the wait was decided, with the wait planned, it would say the call
// waited out a Retry-After of 10s, before an attempt 2, when the caller
// gave up after 1s (Report.Waited says 1s, and attempt 2 never came), or
// when ResetHost let the retry go early.
type retryWait struct {
	kind    string        // resilient.wait.kind: backoff or retry_after
	at      time.Time     // when it started
	planned time.Duration // the wait decided
	number  int           // the attempt it waits for
}

// endWait adds the event of the call's wait before a retry, if any, that
// ended at end: it lasted from its start to end, and no longer than
// planned (the retry's attempt, by whose start end is known, may have
// started a little after it ended). Its attempt.number is the attempt it
// waited for, which did not come when the caller gave up during it.
func (c *call) endWait(end time.Time) {
	w := c.wait.Swap(nil)
	if w == nil {
		return
	}
	d := min(max(end.Sub(w.at), 0), w.planned)
	c.span.AddEvent(EventWait, trace.WithTimestamp(w.at), trace.WithAttributes(
		AttrWaitKind.String(w.kind), AttrWaitDuration.Float64(d.Seconds()),
		AttrAttemptNumber.Int(w.number)))
}

// errorTypeOfOutcome is the error.type of a call that ended without a
// response and without an attempt's error to name it, with outcome o and
// stop reason stop: a timeout when the call's budget ended it (a hop of a
// redirect left nothing of it, see resilient.StopDeadline), though no
// attempt was cut.
func errorTypeOfOutcome(o resilient.Outcome, stop resilient.StopReason) string {
	if stop == resilient.StopDeadline {
		return errTimeout
	}
	switch o {
	case resilient.OutcomeCanceled:
		return errCanceled
	case resilient.OutcomeCircuitOpen:
		return errCircuitOpen
	case resilient.OutcomeRateLimited:
		return errRateLimited
	case resilient.OutcomeTooManyInFlight:
		return errTooManyInFlight
	}
	return errOther
}
