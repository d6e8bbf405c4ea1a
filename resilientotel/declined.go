package resilientotel

import (
	"net/http"
	"slices"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/trace"
)

// This file holds what follows from a base RoundTripper that declines an
// attempt with http.ErrSkipAltProtocol: an alternate protocol's
// RoundTripper, registered with http.Transport.RegisterProtocol, without a
// connection to the host (golang.org/x/net/http2's does so), which sends
// nothing, for the http.Transport above to send the request itself. As the
// Transport does (see its altprotocol.go), only the bare sentinel says an
// attempt was declined: wrapped, by a middleware or by a Transport below
// whose retry its base declined after an earlier attempt was sent, it is
// an error that net/http does not act on, and that may follow a request
// sent.

// declinedErr reports whether err, an attempt's error as a Tracer gets it,
// is the bare http.ErrSkipAltProtocol of a base that declined the attempt,
// never sent.
func declinedErr(err error) bool { return err == http.ErrSkipAltProtocol }

// endDeclined ends, at time now, the CLIENT span of an attempt that the
// base declined (see declinedErr): no request was sent, so it is no
// failure (an Unset status, no error.type), it is marked
// resilient.declined, and http.client.request.duration, which counts
// requests, records nothing. Its span was started before the base had its
// say, as every attempt's is, for its traceparent: OpenTelemetry cannot
// withdraw it. It is not counted among the requests the call sent, which a
// redirect's resend count follows, and a hedged copy declined gets no
// resilient.hedge event.
func (a *attempt) endDeclined(now time.Time) {
	c := a.call
	c.sent.Add(-1)
	if a.hedge > 0 {
		c.dropHedge(a)
	}
	if !a.span.IsRecording() {
		a.span.End()
		return
	}
	a.span.SetAttributes(AttrDeclined.Bool(true))
	if c.span == nil || !c.endLater(a.span, now, a.number) {
		a.span.End(trace.WithTimestamp(now))
	}
}

// holdHedge keeps a, a hedged copy about to reach the base, until the call
// ends: its resilient.hedge event is added then (see addHeldHedges), with
// the time the copy started, unless the base declined it (see dropHedge).
// Only the call's end adds the events: a losing copy ends on its own
// goroutine, canceled, as the call returns, and its event added there
// could come after the call's span ended, which takes none any more.
func (c *call) holdHedge(a *attempt) {
	c.endMu.Lock()
	c.hedgesHeld = append(c.hedgesHeld, a)
	c.endMu.Unlock()
	c.hedged.Store(true)
}

// dropHedge takes a, a hedged copy that the base declined, never sent,
// from those held by holdHedge: it gets no resilient.hedge event. A copy
// the call's end took already has its event.
func (c *call) dropHedge(a *attempt) {
	c.endMu.Lock()
	if i := slices.Index(c.hedgesHeld, a); i >= 0 {
		c.hedgesHeld = slices.Delete(c.hedgesHeld, i, i+1)
	}
	c.endMu.Unlock()
}

// addHeldHedges adds, before the call's span ends, the resilient.hedge
// events of the hedged copies held (see holdHedge), in the order they
// reached the base: those that ended sent, and those still in flight (a base
// declines an attempt at once, before sending anything, so that a copy
// still running was sent as far as anyone knows).
func (c *call) addHeldHedges() {
	c.endMu.Lock()
	held := c.hedgesHeld
	c.hedgesHeld = nil
	c.endMu.Unlock()
	for _, a := range held {
		c.span.AddEvent(EventHedge, trace.WithTimestamp(a.start), trace.WithAttributes(
			AttrAttemptNumber.Int(a.number), AttrHedge.Int(a.hedge)))
	}
}

// noteDeclined records what a, the record of an attempt that the base
// declined (see declinedErr), tells of the call: its error names no
// failure, and leaves the call's error.type to the attempt before it, if
// any. A first attempt declined and not retried ends the call with the
// bare sentinel, for net/http to send the request itself, as the
// Transport returns it (see its call.declinedBare) when nothing else
// happened: no attempt before it, nor a hedged copy of a keyed write sent
// (which the host may have processed: the Transport then returns an error
// net/http does not send the request again for). c.errMu is held.
//
// The Transport's records do not say which copies of a keyed write proved
// unprocessed (a dial refused): a keyed write whose attempt the base
// declined late, after copies that were all refused so, is taken for a
// failure, where the Transport returns the bare sentinel.
func (c *call) noteDeclined(a *resilient.Attempt) {
	c.declined = a.Number == 1 && !a.Retry && (a.Hedges == 0 || !keyedWrite(a))
}

// keyedWrite reports whether the call of a is a write that carries an
// idempotency key: a method that is not idempotent by its definition (RFC
// 9110, section 9.2.2), as the Transport's write rule has it, sent with a
// key.
func keyedWrite(a *resilient.Attempt) bool {
	switch a.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return false
	}
	return a.IdempotencyKey != ""
}

// isDeclined reports whether the call ends with the bare sentinel of a
// base that declined it (see noteDeclined).
func (c *call) isDeclined() bool {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.declined
}
