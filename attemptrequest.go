package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
)

// This file holds the request each attempt of a call sends: its copy of the
// caller's, its headers and its write trace.

// attemptRequest returns the request of attempt st: the caller's own when
// the attempt sends it unchanged (its first attempt, with its own body and
// headers), else a copy with the attempt's body and headers. The caller's
// request is never modified. A copy is made once, by WithContext, with the
// context the attempt needs: the request's own, or the call's, with the
// write trace and the deadline (readied for the deadline middleware, see
// readyDeadline) when they apply, both held in one attemptExtras with the
// values of the keyed header. When the deadline's context is the
// attempt's own (an attemptCtx: the caller's context is never canceled)
// and the caller set no trace of its own, that context carries the write
// trace; else the trace gets a context of its own, which composes it with
// the caller's.
func (c *call) attemptRequest(st *attemptState, body io.ReadCloser, callerBody bool) *http.Request {
	var x *attemptExtras
	if c.keyPending {
		c.keyPending = false
		if c.t.observed {
			// Observers and tracers may keep Attempt.IdempotencyKey:
			// a string of its own keeps nothing else alive.
			c.key = newIdempotencyKey()
		} else {
			// The key is drawn into the first attempt's extras: the
			// key and the attempt's copy of the request are one
			// allocation.
			x = new(attemptExtras)
			c.key = x.drawKey()
		}
	}
	// A keyed PUT or DELETE (WithIdempotencyMethods) hides its key from
	// net/http as a write does: the Transport resends it on RFC 9110's
	// word, not on the host's, and net/http's own resend after the write
	// would reach the host uncounted, under WithMaxRetries(0) too.
	unproven := (c.write || c.key != "") && !c.resendable()
	traced := c.write && c.needsTrace()
	c.trace = nil
	if !(c.stamp || c.cfg.attemptHeader != "" || !callerBody || traced || c.traced || c.attemptCtx != nil) {
		return c.req
	}
	ctx := c.req.Context()
	if c.traced || c.attemptCtx != nil {
		ctx = c.sendCtx()
	}
	ready := c.cfg.hedging == nil && deadlineReadied(ctx, st) // a hedged attempt's copies have contexts of their own
	hidden := c.hidesKey()
	if x == nil && (ready || hidden || traced) {
		// A traced attempt's context and its copy of the request are
		// one allocation (see traceWrite), not two: a write the caller
		// keyed itself, under its own deadline, has no other.
		x = new(attemptExtras)
	}
	if traced {
		ctx = c.traceWrite(ctx, st, x, ready)
		c.trace.keyed = !unproven
	}
	if hidden {
		// A key this Transport drew is ours, not the caller's: a
		// Transport below, given this one's attempts (New(New(base))),
		// must not take it for the caller's word that the host
		// dedupes, and resend the write to a host not known to, or
		// hedge it to a host only learned to (see hedgeable).
		if ctx != context.Context(&x.traced) {
			x.traced = traceCtx{Context: ctx}
			ctx = &x.traced
		}
		x.traced.stamped, x.traced.own = c.key, c.ownKey
	}
	if ready {
		ctx = readyDeadline(&x.db, ctx, st)
	}
	var spare []string
	if x != nil {
		spare = x.vals[:]
	}
	var areq *http.Request
	if x != nil {
		areq = x.db.copyRequest(c.req, ctx)
	} else {
		areq = c.req.WithContext(ctx)
	}
	areq.Body = body
	if h := c.headers(st.number, st.maxAttempts, unproven, spare); h != nil {
		areq.Header = h
	}
	return areq
}

// hidesKey reports whether the key the call's attempts carry is one this
// Transport stamped on them without the caller's word for it (one it drew,
// or the caller's that http.Client copied into a redirect to another
// host): a Transport below, given an attempt or a hedged copy of one as
// its own call, finds it under stampedKey in the request's context.
func (c *call) hidesKey() bool {
	return c.stamp && c.key != "" && !c.callerKey
}

// traceWrite sets c.trace for an attempt of an unproven write and returns
// the attempt's context, ctx carrying the trace. Unless the caller's
// context has a trace of its own, which is composed with the write trace
// (see httptrace.WithClientTrace), the trace is the pooled state's, which
// nothing writes but its hooks: net/http calls them within the base's
// RoundTrip only, and may read the trace after it returned. It is carried
// by a context in x when there is one (the deadline's own when readied,
// see deadlineBody.init, or x.traced), else by one of its own.
func (c *call) traceWrite(ctx context.Context, st *attemptState, x *attemptExtras, ready bool) context.Context {
	if httptrace.ContextClientTrace(ctx) != nil {
		c.trace = new(writeTrace)
		c.trace.arm()
		return httptrace.WithClientTrace(ctx, &c.trace.trace)
	}
	c.trace = st.writeTrace()
	switch {
	case x == nil || clientTraceKey == nil:
		return httptrace.WithClientTrace(ctx, &c.trace.trace)
	case ready && ctx.Done() == nil:
		x.db.own.trace = &c.trace.trace
		return ctx
	default:
		x.traced = traceCtx{Context: ctx, trace: &c.trace.trace}
		return &x.traced
	}
}

// headers returns the attempt's own header map when it must differ from the
// caller's (an idempotency key to stamp, or the attempt header), else nil.
// A keyed header is made with spare (see keyedHeader).
func (c *call) headers(n, maxAttempts int, unproven bool, spare []string) http.Header {
	if c.stamp && (c.header == nil || c.headerFor == unproven) {
		c.header = c.keyedHeader(unproven, spare)
		c.headerFor = !unproven
	}
	h := c.header
	if name := c.cfg.attemptHeader; name != "" && name != c.cfg.idempotencyHeader {
		if h == nil {
			h = c.req.Header
		}
		h = h.Clone()
		if h == nil {
			h = make(http.Header, 1)
		}
		h.Set(name, strconv.Itoa(n)+"/"+strconv.Itoa(maxAttempts))
	}
	return h
}

// resendable reports whether the call's write may be resent after an
// ambiguous failure: it carries a key and its host deduplicates by key:
// on the caller's word (its key, or the host named), or as learned from
// the host's answers, which apply only to requests sent to the host
// itself, not to a virtual host behind its address (see virtualHost); or
// as the call's key retry is to learn it once the host answers it (see
// learnOnSend).
func (c *call) resendable() bool {
	if c.key == "" {
		return false
	}
	u := c.req.URL
	return c.callerKey || c.learnOnSend || c.t.keys.isNamed(u.Scheme, u.Host) || c.t.keys.isLearned(u.Scheme, u.Host) && !virtualHost(c.req)
}

// learnHonors records that the call's host deduplicates writes by key,
// unless the call was sent to a virtual host behind its address: the
// answers of one virtual host say nothing of the others, nor of the
// address's own (see virtualHost).
func (c *call) learnHonors() {
	if !virtualHost(c.req) {
		c.t.keys.learn(c.req.URL.Scheme, c.req.URL.Host)
	}
}

// needsTrace reports whether an attempt of a write is traced to learn
// whether it was written: only when a failure of it could then be retried.
// A write resent on the host's word is traced too: its key, where net/http
// sees it, has net/http's Transport resend on its own a request it wrote
// on a reused connection that died, and the error of that resend (a
// refused dial) reads as never sent. Without the trace, such an attempt
// would not count as lost (see call.lost): a 409 to the key it holds
// returned as final, or the call's error taken for a write never sent. A
// hedged attempt is traced so too, and each of its copies with a trace of
// its own (see call.copyTrace): the trace of the copy that decides the
// attempt becomes the call's (see settle).
func (c *call) needsTrace() bool {
	return c.cfg.maxRetries > 0
}

// learnKeys records that the host deduplicates writes by key when the
// attempt's answer says so, and forgets what it learned when the answer
// says otherwise (see ignoresKeys): a host rolled back to a version that
// ignores keys, or one taken for another from its answers. An answer that
// says both (a second create for one key, with "Idempotent-Replayed:
// false") is the host ignoring keys: what it does outweighs what it says.
//
// The winner of a hedged keyed write learns under its run's lock: a copy
// that lost with a second create (see hedgeRun.finish) forgets the host
// after it, or has it forgotten here, whichever of the two ends first.
func (c *call) learnKeys(st *attemptState, resp *http.Response) {
	if run := st.run; run != nil && run.keyed {
		run.mu.Lock()
		run.told = true
		c.learnKeysOf(st, resp, run.twice)
		run.mu.Unlock()
		return
	}
	c.learnKeysOf(st, resp, false)
}

// learnKeysOf is learnKeys, twice saying that a hedged copy of the attempt
// that lost got a second create.
func (c *call) learnKeysOf(st *attemptState, resp *http.Response, twice bool) {
	ok := resp
	if ok == nil {
		ok = st.cut // a success whose body broke on its way
	}
	drawn := c.key != "" && !c.ownKey
	switch {
	case twice || ignoresKeys(st, ok, c.processed, c.key != ""):
		c.t.keys.forget(c.req.URL.Scheme, c.req.URL.Host)
	case honorsKeys(st, resp, drawn, drawn || isSafeRead(c.req.Method) && !c.ownKey):
		// A replay header teaches when it answers a key the Transport
		// drew, or a read's failure: not a PUT's or a DELETE's that
		// carried no key (not reads, though the write rule resends
		// them as reads), whose header answers no key of theirs.
		c.learnHonors()
	}
	if ok != nil && ok.StatusCode/100 == 2 && c.write && c.key != "" {
		c.processed = true
	}
}

// baseCopy returns r, a copy a base below made of an attempt's request,
// as the base would have made it of the caller's request: with the
// caller's context (the call's, under a Tracer), not the attempt's, which
// ends with the response's body, and, when the Transport set headers of
// its own on the attempt, with the key headers (the configured name,
// Idempotency-Key and X-Idempotency-Key, in any capitalisation) and the
// attempt header as the caller set them, not as the attempt carried them:
// a key the Transport drew, on a request the caller clones for its next
// write, would have a host that deduplicates by key answer that write
// with the first one's stored response (and be taken for the caller's
// word). The base's other headers stay (a key header it set itself is
// replaced by the caller's too, or dropped). It is called for such a base
// alone (a request of its own as the response's), not for net/http's
// Transport.
func (c *call) baseCopy(r *http.Request) *http.Request {
	ctx := c.req.Context()
	if c.traced {
		ctx = c.ctx
	}
	r2 := r.WithContext(ctx)
	if !c.stamp && c.cfg.attemptHeader == "" {
		return r2 // the caller's headers, as the attempt sent them
	}
	own := func(k string) bool {
		return strings.EqualFold(k, c.cfg.idempotencyHeader) || strings.EqualFold(k, DefaultIdempotencyHeader) ||
			strings.EqualFold(k, "X-Idempotency-Key") || c.cfg.attemptHeader != "" && strings.EqualFold(k, c.cfg.attemptHeader)
	}
	h := make(http.Header, len(r.Header))
	for k, vv := range r.Header {
		if !own(k) {
			h[k] = vv
		}
	}
	for k, vv := range c.req.Header {
		if own(k) {
			h[k] = slices.Clone(vv)
		}
	}
	r2.Header = h
	return r2
}
