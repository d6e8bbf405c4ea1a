package resilientotel

import (
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
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

// StartAttempt starts the CLIENT span of an attempt about to reach the wire
// and injects its span context into the headers of a copy of req; it
// implements resilient.Tracer.
func (in *instrumentation) StartAttempt(req *http.Request, info resilient.AttemptInfo) (*http.Request, func(*http.Response, error)) {
	parent := req.Context()
	if in.passthrough {
		return in.propagate(req), nil
	}
	c := in.callOf(parent)
	if c == nil {
		// An attempt of an idle call (see idleCall): the Transport
		// starts every call, and StartCall leaves only those without
		// state. The call stays unrecorded, also when an SDK was
		// installed since it started (a CLIENT span without its call's,
		// a resend without the request it resends).
		return in.propagate(req), nil
	}
	resend := c.offset + info.ResendCount
	c.sent.Add(1)
	a := &attempt{call: c, start: time.Now(), number: info.Number}
	// The span starts when the attempt's duration is measured from, so
	// that http.client.request.duration is the span's duration, as the
	// conventions ask.
	a.opts = [3]trace.SpanStartOption{c.startOpts[0], c.startOpts[1], trace.WithTimestamp(a.start)}
	if resend > 0 {
		attrs := append(c.attrs[:c.nattrs:c.nattrs], semconv.HTTPRequestResendCountKey.Int(resend))
		a.opts[1] = trace.WithAttributes(attrs...)
	}
	if info.Hedge > 0 && c.span != nil && c.span.IsRecording() {
		// The event of a hedged copy waits for the call's end: a copy
		// the base declines was never sent (see holdHedge). Held before
		// its span starts: the Transport counts the copy sent already,
		// and its attempt may be decided, and the call end, while the
		// sampler, the span processors and the propagator have their say.
		a.hedge = info.Hedge
		c.holdHedge(a)
	}
	a.carrier.src = req.Header
	ctx := a.begin(in, parent)

	recording := a.span.IsRecording()
	record := recording || in.m.attemptEnabled(ctx)
	if record {
		// Count the writes of the request: net/http writes it again,
		// on a new connection, when a reused one was closed before an
		// answer came.
		a.ct.WroteRequest = a.wroteRequest
		if recording {
			// The connection's peer, for network.peer.address.
			a.ct.GotConn = a.gotConn
		}
		ctx = httptrace.WithClientTrace(ctx, &a.ct)
	}
	if ctx != parent {
		// The span and the client trace sit on the Transport's attempt
		// context, whose AfterFunc must stay in sight (see
		// afterFuncCtx).
		a.fctx = afterFuncCtx{Context: ctx, parent: parent}
		ctx = &a.fctx
	}
	var out *http.Request
	if record || a.carrier.dst != nil || a.span.SpanContext().IsValid() {
		out = req.WithContext(ctx)
		if a.carrier.dst != nil {
			out.Header = a.carrier.dst
		}
	}
	if !record {
		// Nothing to record when it ends: the span, which records
		// nothing either, ends now, as every span started must.
		a.span.End()
		return out, nil
	}
	a.ctx = ctx
	return out, a.end
}

// statusErrorType returns the error.type of a response of status: its
// code for one of 400 or more, and for one below 100, a code no client can
// interpret (the conventions want an Error status for both: "any other
// code the client failed to interpret"), as otelhttp does; _OTHER for a
// response without a code (0: net/http reads a status line's "000" as
// such), as the call's span names it, whose Report says 0 for none, and
// for a code that is no status code (see validStatus); "" otherwise.
func statusErrorType(status int) string {
	switch {
	case !validStatus(status):
		return errOther
	case status < 100 || status >= 400:
		return strconv.Itoa(status)
	}
	return ""
}

// validStatus reports whether status is a status code of one to three
// digits, which http.response.status_code and error.type may hold. An
// HTTP/1 status line carries three digits, but net/http's HTTP/2 client
// takes any number a server sends as :status, negative or of any length:
// recorded as they are, a hostile server's codes would make each answer a
// metric series of its own.
func validStatus(status int) bool { return status > 0 && status < 1000 }

// endedType returns the error.type of an attempt whose context ended. When
// the caller's context ended, it is the call's (see EndCall), timeout or
// canceled, whatever cause the caller gave it: errgroup.WithContext gives
// the error of another call, which names another host's failure. Else the
// Transport ended it: timeout for its deadline (the attempt timeout, the
// call's budget), canceled otherwise (a hedged copy that lost).
func (a *attempt) endedType() string {
	if a.call.span != nil { // the call's context is the caller's, with the call's span
		if err := a.call.Err(); err != nil {
			return errorType(err)
		}
	}
	if t := errorType(context.Cause(a.ctx)); t == errTimeout {
		return t
	}
	return errCanceled
}

// begin starts the attempt's span under parent, with a.opts, and injects
// its span context into the attempt's carrier with in's propagator; it
// returns the span's context. When the tracer or the propagator panics,
// the request is never sent, and the Transport has no function to end its
// span with: a hedged copy held for its event is dropped, as one the base
// declined (see dropHedge), first, for a span processor may panic as the
// span ends; and the span, if started, ends before the panic goes on, as
// every span started must.
func (a *attempt) begin(in *instrumentation, parent context.Context) context.Context {
	done := false
	defer func() {
		if done {
			return
		}
		if a.hedge > 0 {
			a.call.dropHedge(a)
		}
		if a.span != nil {
			endCutShort(a.span)
		}
	}()
	ctx, span := in.start(parent, a.call.clientNm, a.opts[:]...)
	a.span = span
	in.prop.Inject(ctx, &a.carrier)
	done = true
	return ctx
}

// wroteRequest counts the writes of the attempt's request.
func (a *attempt) wroteRequest(httptrace.WroteRequestInfo) { a.writes.Add(1) }

// gotConn keeps the remote address of the connection the attempt's request
// is sent on: the last one, when net/http sends it again on another.
func (a *attempt) gotConn(info httptrace.GotConnInfo) {
	if info.Conn == nil {
		return
	}
	addr := info.Conn.RemoteAddr()
	a.peerMu.Lock()
	a.peer = addr
	a.peerMu.Unlock()
}

// attempt is one CLIENT span.
type attempt struct {
	call    *call
	ctx     context.Context
	span    trace.Span
	start   time.Time
	carrier headerCarrier
	opts    [3]trace.SpanStartOption // the span's start options: kind, attributes, start time
	ct      httptrace.ClientTrace
	fctx    afterFuncCtx // the context the request is sent with
	writes  atomic.Int32 // the request's writes, by net/http
	number  int          // the attempt's number in the call (resilient.AttemptInfo)
	hedge   int          // the copy's number, for its event; 0 for an attempt or no event
	peerMu  sync.Mutex
	peer    net.Addr // the remote address of the request's connection (GotConn)
}

// end ends the attempt's span and records its duration. The Transport
// calls it within the attempt, under the attempt's deadline, before it
// classified the response and handed it over: the span is only marked
// ended there, at this time, and handed to the span processors later, by
// the call's Attempt or EndCall (see flush). A span processor that exports
// as spans end (sdktrace.NewSimpleSpanProcessor) may take its time there,
// but not from the attempt's deadline: a success would become a timeout,
// sent again, as slow as the exporter.
func (a *attempt) end(resp *http.Response, err error) {
	now := time.Now()
	dur := now.Sub(a.start)
	status, proto, errType := 0, "", ""
	if resp != nil {
		// With err, a response whose body broke as the Transport read
		// it (see resilient.Tracer): its status code was received, and
		// the attempt failed with err all the same.
		status, proto = resp.StatusCode, protocolVersion(resp)
		errType = statusErrorType(status)
		if !validStatus(status) {
			status = 0 // no status code, as a code of 0
		}
	}
	if resp == nil || err != nil {
		if declinedErr(err) {
			a.endDeclined(now)
			return
		}
		errType = errorType(err)
		if a.ctx.Err() != nil {
			// The attempt's context ended: the base's error says only
			// "canceled", or is the context's cause (net/http returns
			// it), which may be anything the caller gave.
			errType = a.endedType()
		}
		if errType == "" {
			errType = errOther // no response and no error: a broken RoundTripper
		}
	}
	transparent := int(a.writes.Load()) - 1
	if a.span.IsRecording() {
		var kv [6]attribute.KeyValue
		attrs := kv[:0]
		if transparent > 0 {
			attrs = append(attrs, AttrTransparentResends.Int(transparent))
		}
		a.peerMu.Lock()
		peer := a.peer
		a.peerMu.Unlock()
		if host, port := peerAddr(peer); host != "" {
			attrs = append(attrs, semconv.NetworkPeerAddressKey.String(host))
			if port > 0 {
				attrs = append(attrs, semconv.NetworkPeerPortKey.Int(port))
			}
		}
		if status > 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(status))
		}
		if proto != "" {
			attrs = append(attrs, semconv.NetworkProtocolVersionKey.String(proto))
		}
		if errType != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
			if status > 0 && err == nil {
				a.span.SetStatus(codes.Error, "")
			} else {
				a.span.SetStatus(codes.Error, errType)
			}
		}
		a.span.SetAttributes(attrs...)
		if a.call.span == nil || !a.call.endLater(a.span, now, a.number) {
			a.span.End(trace.WithTimestamp(now))
		}
	} else {
		a.span.End()
	}
	if transparent > 0 && a.call.in.m.transparent.Enabled(a.ctx) {
		a.call.in.m.transparent.Add(a.ctx, int64(transparent), metric.WithAttributeSet(a.call.metricSet()))
	}
	if h := a.call.in.m.duration; h.Enabled(a.ctx) {
		c := a.call
		var kv [8]attribute.KeyValue
		attrs := kv[:0]
		for _, x := range c.attrs[:c.nattrs] {
			switch x.Key {
			case semconv.HTTPRequestMethodKey, semconv.ServerAddressKey, semconv.ServerPortKey, semconv.URLTemplateKey:
				attrs = append(attrs, x)
			}
		}
		if status > 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(status))
		}
		if proto != "" {
			attrs = append(attrs, semconv.NetworkProtocolVersionKey.String(proto))
		}
		if errType != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		}
		h.Inst().Record(a.ctx, dur.Seconds(), metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
}

// afterFuncCtx is a context derived from parent by values alone (an
// attempt's span and client trace), which forwards AfterFunc to parent.
// A context derived from it with a cancel (net/http derives one per
// request) follows parent through that method when parent has one, as it
// would follow parent itself: the Transport's context of an attempt whose
// caller's context is never canceled has one, so that no goroutine is
// needed to follow it. Behind the context package's own value contexts,
// which have no such method, each attempt would cost a goroutine, live
// until its request ends.
type afterFuncCtx struct {
	context.Context
	parent context.Context
}

// AfterFunc registers f to run once c is done: through parent's AfterFunc
// when it has one, else as context.AfterFunc does.
func (c *afterFuncCtx) AfterFunc(f func()) (stop func() bool) { return afterFunc(c.parent, f) }

// afterFunc registers f to run once parent is done, through parent's own
// AfterFunc method when it has one.
func afterFunc(parent context.Context, f func()) (stop func() bool) {
	if a, ok := parent.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(parent, f)
}
