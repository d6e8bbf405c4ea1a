package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Transport is an http.RoundTripper that makes calls to flaky, rate-limited
// APIs survive. For each call it stamps an idempotency key on writes, then
// runs attempts through a chain of middlewares (rate limiter, the limit of
// attempts in flight, circuit breaker, attempt timeout, the base
// RoundTripper, classification) and retries Transient and Throttled
// outcomes with capped, jittered backoff, honoring Retry-After:
//
//	caller ── http.Client ── Transport.RoundTrip
//	                           ├─ idempotency   one key per call, the same on every attempt
//	                           ├─ retry loop    budget, backoff, Retry-After
//	                           │    per attempt:
//	                           │    ├─ rate limit   wait for the partition's turn
//	                           │    ├─ in flight    wait for one of the host's slots (WithMaxInFlight, optional)
//	                           │    ├─ breaker      refuse at once while the host is open
//	                           │    ├─ attempt timeout (optional)
//	                           │    ├─ base RoundTripper
//	                           │    └─ classify     Success / Transient / Throttled / Permanent
//	                           └─ observer + slog  one record per attempt
//
// RoundTrip follows the http.RoundTripper contract: it never modifies the
// caller's request (an attempt that must differ from it, by its body or
// its headers, is a copy), it always closes the request body, it returns a
// response with a nil error whatever its status (the last attempt's, with
// its body readable), and an error, never with a response, only when no
// attempt produced one that can be returned.
//
// Responses it retries past are drained (at most 64 KiB) and closed so that
// their connections are reused. Waits end early when the request's context
// is done, and a wait that would pass the context's deadline or the call's
// budget is not started: the last result is returned instead. A request
// whose deprecated Cancel channel is closed (http.Client closes it at its
// Timeout) ends the call as a canceled context does: no retry follows, and
// the wait before one ends, as do the waits of the rate limiter and of
// WithMaxInFlight.
//
// The zero Transport behaves as New(nil): http.DefaultTransport with the
// default options. A Transport is safe for concurrent use by multiple
// goroutines and starts no goroutine per request. Make one and share it,
// as http.Transport: what it learns of a host (its breaker, its quota, its
// retry budget) serves every call through it. One made for a single call
// is garbage once the call is done, its timers included.
type Transport struct {
	cfg      config
	base     http.RoundTripper
	inner    hop // the per-attempt chain
	cls      *classifier
	keys     *keyHosts  // hosts known to deduplicate writes by key
	budgets  *budgetSet // nil without a retry budget
	observed bool       // an observer or a logger wants each Attempt
	clock    callClock  // when calls and attempts start

	// The shared state of the chain's layers, for ResetHost: nil when the
	// layer is off.
	rl       *rateLimiter
	breakers *breakerSet
	bulkhead *bulkhead // WithMaxInFlight's limit; nil for none

	// resets is signaled by every ResetHost, which wakes the calls
	// waiting for a server's Retry-After (see waitRetry).
	resetMu sync.Mutex
	resets  atomic.Pointer[resetSignal]

	zeroOnce sync.Once  // the zero Transport builds zeroImpl on first use
	zeroImpl *Transport // New(nil), for the zero Transport

	// states recycles the attempt states of finished calls: no layer keeps
	// one past its call, so a call's state goes back when RoundTrip returns.
	states sync.Pool
}

// A Middleware wraps a RoundTripper with one concern, such as a caller's
// signing or logging; Chain composes middlewares.
type Middleware func(http.RoundTripper) http.RoundTripper

// Chain returns base wrapped in mws, mws[0] being the outermost: a request
// goes through mws[0], then mws[1], …, then base. Nil middlewares are
// skipped. A nil base means http.DefaultTransport. It panics, naming the
// middleware by its index, if one returns a nil RoundTripper: the
// middleware outside it would panic at the first request, and an
// http.Client given a nil Transport uses http.DefaultTransport, without
// the chain.
func Chain(base http.RoundTripper, mws ...Middleware) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			if rt = mws[i](rt); rt == nil {
				panic(fmt.Sprintf("resilient: Chain: middleware %d returned a nil RoundTripper", i))
			}
		}
	}
	return rt
}

// New returns a Transport that sends attempts through base; a nil base
// means http.DefaultTransport. It panics on an invalid option value, such
// as a negative duration, or a units mistake: a timeout, budget or hedge
// delay below 1ms but not zero (see WithAttemptTimeout).
func New(base http.RoundTripper, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.checkFloors()
	if cfg.attemptHeader != "" && cfg.attemptHeader == cfg.idempotencyHeader {
		panic(fmt.Sprintf("resilient: WithAttemptHeader: %s carries idempotency keys (WithIdempotencyHeader)", cfg.attemptHeader))
	}
	observed := len(cfg.observers) > 0 || cfg.logger != nil || len(cfg.ctxObservers) > 0 || cfg.tracer != nil
	t := &Transport{cfg: cfg, base: base, observed: observed}
	t.resets.Store(newResetSignal())
	t.keys = newKeyHosts(cfg.keyHosts)
	if !cfg.noBudget {
		t.budgets = newBudgetSet(cfg.budget, cfg.breaker.Key)
		t.budgets.shareThrough(cfg.quotaStore)
	}
	t.cls = &classifier{
		codes:    newCodeTable(cfg.codes),
		custom:   cfg.classifier,
		maxPeek:  cfg.maxPeek,
		observed: t.observed,
		resets:   cfg.noRateLimit,
		parsers:  cfg.rateParsers,
	}
	t.inner = hopTo(Chain(base,
		t.rateLimitMiddleware(),
		t.bulkheadMiddleware(),
		t.breakerMiddleware(),
		deadlineMiddleware(cfg.attemptTimeout, cfg.maxElapsed),
		func(next http.RoundTripper) http.RoundTripper { t.cls.next = hopTo(next); return t.cls },
		tracerMiddleware(cfg.tracer),
	))
	if t.rl != nil {
		t.rl.breakers = t.breakers // nil without breakers
	}
	return t
}

// NewClient returns an http.Client whose Transport is New(nil, opts...).
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: New(nil, opts...)}
}

// CloseIdleConnections closes the idle connections of the base
// RoundTripper, when it has such a method, so that
// http.Client.CloseIdleConnections reaches it. The Transport itself never
// calls it.
func (t *Transport) CloseIdleConnections() {
	base := t.base
	if base == nil { // the zero Transport
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// maxDrain bounds how much of a response retried past is read so that its
// connection can be reused; a longer body is closed unread.
const maxDrain = 64 << 10

// RoundTrip sends req, retrying as configured. See Transport for the rules.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.inner.rt == nil {
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.RoundTrip(req)
	}
	if req.URL == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		if r := callValuesOf(req.Context()).report; r != nil {
			r.fill(req, Report{Outcome: OutcomePermanent}) // no attempt
		}
		return nil, &RequestError{Err: errors.New("nil Request.URL")}
	}
	c := call{t: t, req: req, ctx: req.Context(), start: t.clock.now()}
	cv := callValuesOf(c.ctx)
	c.cfg, c.report, c.ctxKey = t.callConfig(cv), cv.report, cv.key
	if tr := t.cfg.tracer; tr != nil {
		c.ctx = c.startCall(tr)
		c.traced = c.ctx != req.Context()
	}
	ended := false
	if c.report != nil || t.cfg.tracer != nil {
		defer c.endPanicking(&ended) // open-coded: no cost without a Report or a Tracer
	}
	resp, err := c.run()
	ended = true
	if c.report != nil || t.cfg.tracer != nil {
		c.end(resp, false)
	}
	return resp, err
}

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
	captureLimit := c.cfg.maxBufferedBody
	if c.cfg.maxRetries == 0 {
		captureLimit = 0 // a single attempt: no retry to replay the body for
	}
	body.init(req, captureLimit)
	defer body.close()
	c.capture = body.cap
	c.key, c.stamp, c.callerKey, c.keyPending = t.idempotencyKey(req, c.cfg, c.ctxKey)
	c.write = !isIdempotentMethod(req.Method)
	c.setDeadline()
	maxAttempts := c.cfg.maxRetries + 1
	if maxAttempts < 1 { // WithMaxRetries(math.MaxInt)
		maxAttempts = c.cfg.maxRetries
	}

	if c.ctx.Err() != nil {
		// Done before the first attempt: no layer of the chain is called,
		// and the deferred close releases the body.
		return nil, c.fail(0, context.Cause(c.ctx))
	}

	var held *http.Response // the last response retried past, kept for give-up
	var lastErr error       // the error of the last attempt retried past, when it had no response
	reqBody, sameBody := body.first()
	st, _ := t.states.Get().(*attemptState) // reset for each attempt
	if st == nil {
		st = new(attemptState)
	}
	defer t.putState(st)
	for n := 1; ; n++ {
		c.attempts++  // from its start: a panic during the attempt reports it too
		t0 := c.start // the call's one clock reading serves its first attempt
		if n > 1 {
			t0 = t.clock.now() // st was reset as the last attempt ended; the pool's and new ones are zero
		}
		c.beginAttempt(st, n, maxAttempts, t0)
		areq := c.attemptRequest(st, reqBody, sameBody && n == 1)
		st.bufferMax = c.responseBuffer(n, maxAttempts, &body) // once the key is drawn
		if st.bufferMax > 0 {
			st.capture = body.cap
		}

		var resp *http.Response
		var err error
		if c.hedgeable(areq) {
			resp, err = c.hedged(n, areq, st)
		} else {
			resp, err = t.inner.roundTrip(areq, st)
		}
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
			t.cls.classify(st, resp, err, time.Now)
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
		}

		if (c.write && c.key != "") || st.apiErr != nil {
			// Any error envelope of the host tells its dialect, a
			// read's too; a success only tells it of a keyed write.
			c.learnKeys(st, resp)
		}
		if resp != nil && !st.class.Retryable() && t.budgets != nil {
			t.budgets.answered(c) // the host answered
		}
		// What decide took from the budget for this attempt, given back
		// below if a layer of the chain refused it and the call ends.
		paid, paidThrottled, forecast := c.paid, c.paidThrottled, c.forecast
		c.paid, c.forecast = false, false
		sentKey := c.key // decide adds one after a key-required answer
		delay, retry, stop := c.decide(n, maxAttempts, st, resp, err, &body)
		if retry && paid && forecast && resp == nil && refusedLocally(err) {
			// Refused as forecast, and retried all the same (by a
			// Classifier): the forecast retry was never sent.
			t.budgets.giveBack(c.hb, paidThrottled)
		}
		if err != nil && c.write && c.key != "" && !st.neverSent && !c.trace.neverWritten() {
			c.lost = true
		}
		var reset *resetSignal // a wait for the server's Retry-After ends with the host's ResetHost
		if retry && st.hasRetryAfter {
			reset = t.resets.Load()
		}
		if retry {
			var berr error
			if reqBody, berr = body.next(c.ctx, req.Cancel, c.deadline); berr != nil {
				// Give up with what the attempt produced; without a
				// response, say why no retry followed.
				retry, delay, stop = false, 0, StopBodyNotReplayable
				c.giveBackRetry()
				if resp == nil {
					err = fmt.Errorf("%w; %w", err, berr)
				}
			}
		}
		st.stop = stop
		if st.wired {
			c.sent++
		}
		c.waited += st.localWait + st.slotWait
		if c.report != nil || t.cfg.tracer != nil {
			c.outcome, c.stop = outcomeOf(c, st, err), stop
		}
		t.observe(c, sentKey, st, resp, err, dur, delay, retry)

		if !retry {
			body.thaw()
			// A layer of the chain refused the attempt, or its request
			// failed before the server could act on it: the body of a
			// retry (from GetBody, or read on from the caller's) that
			// broke, as a GetBody that fails does (body.next).
			unsent := resp == nil && (refusedLocally(err) || st.neverSent && errors.As(err, new(*RequestError)))
			if paid && unsent {
				// Not sent: the retry it was costs nothing.
				t.budgets.giveBack(c.hb, paidThrottled)
			}
			if resp == nil && held != nil && (unsent || stop == StopRetryBudget) {
				// A retry refused locally (breaker open, rate limited,
				// host full, retry budget spent) or whose body broke:
				// return what the last attempt produced. A network
				// error, even one that proves the request never left
				// (a refused dial), is returned as an *Error.
				return held, nil
			}
			if held != nil {
				held.Body.Close()
			}
			if resp != nil {
				handOver(resp)
				return resp, nil
			}
			if stop == StopRetryBudget {
				err = fmt.Errorf("%w: %w", ErrRetryBudgetExhausted, err)
			}
			if lastErr != nil && refusedLocally(err) {
				// A retry refused locally after a network error: the
				// call ends with both, not with the refusal alone.
				err = fmt.Errorf("%w; the attempt before: %w", err, lastErr)
			}
			return nil, c.fail(n, err)
		}
		if resp != nil {
			if held != nil {
				held.Body.Close()
			}
			held, lastErr = holdResponse(resp), nil
		} else {
			lastErr = err
		}
		// The attempt was observed: nothing of it but held is needed any
		// more. Reset for the next attempt now, so that its parsed
		// envelope (up to three times the bytes of the body peeked) is
		// not kept while the call waits.
		st.reset()
		if delay > 0 {
			w0 := time.Now()
			woken, err := c.waitRetry(delay, reset)
			if err != nil {
				part := time.Since(w0) // the part of the wait that passed
				c.waited += part
				t.logCanceledWait(c, n, maxAttempts, err, part)
				c.giveBackRetry()
				if reqBody != nil {
					reqBody.Close()
				}
				if held != nil {
					held.Body.Close()
				}
				c.outcome, c.stop = OutcomeCanceled, StopCanceled
				if lastErr != nil {
					// The call ends with the cancel and the error of
					// the attempt whose retry it waited for.
					err = fmt.Errorf("%w; the attempt before: %w", err, lastErr)
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

// fail returns the *Error of a call that ends without a response after n
// attempts. Its cause is redacted here, whatever its origin (the base's
// errors already are; not a GetBody's, nor the cause of the call's
// context).
func (c *call) fail(n int, err error) error {
	return &Error{Method: c.req.Method, URL: redactURL(c.req.URL), Attempts: n, Err: redactError(err)}
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
	if c.report != nil {
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
// call to them does not move every call, hedged or not, to the heap.
func (c *call) hedged(n int, areq *http.Request, st *attemptState) (*http.Response, error) {
	hc := new(call)
	*hc = *c
	resp, err := hc.sendHedged(n, areq, st)
	*c = *hc
	return resp, err
}

// beginAttempt readies st, zero, for attempt n of the call (of
// maxAttempts), started at start, field by field: a composite literal
// would build the whole state and copy it.
func (c *call) beginAttempt(st *attemptState, n, maxAttempts int, start time.Time) {
	st.number, st.maxAttempts, st.start = n, maxAttempts, start
	st.deadline, st.budget, st.ctxDeadline = c.deadline, c.budget, c.ctxDeadline
	st.callCfg, st.resends, st.lost = c.cfg, c.sent, c.lost
	st.rate = RateLimitInfo{Limit: -1, Remaining: -1}
}

// putState returns a finished call's attempt state to the pool, cleared so
// that it holds no response data.
func (t *Transport) putState(st *attemptState) {
	st.reset()
	t.states.Put(st)
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
	budget   time.Time // start+maxElapsed; zero for none
	// ctxDeadline is the context's deadline, read once; zero for none.
	// The contexts of the call's attempts have the same one (see
	// attemptState.ctxDeadline).
	ctxDeadline time.Time
	key         string // the idempotency key of this call; "" for none
	ctxKey      string // the key the caller set with WithIdempotencyKey; "" for none
	keyPending  bool   // key is to be drawn with the first attempt's request (see attemptRequest)
	stamp       bool   // key must be set on each attempt (the caller did not set it under the configured name)
	callerKey   bool   // the caller set the key: its statement that the host honors keys
	keyRetry    bool   // a key-required answer was already retried with a new key
	lost        bool   // an attempt of this keyed write got no answer after it may have been sent: the server may still hold its key
	processed   bool   // an attempt of this keyed write got a success: a later one that is no replay proves the host ignores keys
	write       bool   // the method is not idempotent: the write rule applies
	header      http.Header
	headerFor   bool         // header was built for a host known to honor keys
	trace       *writeTrace  // proves an attempt of an unproven write was never written; nil when not needed
	capture     *captureBody // the request body's capture, when it has no GetBody; nil for none
	bo          backoff.BackOff
	hb          *hostBudget // the host's retry budget, once looked up
	// paid says that decide took the next attempt's cost from hb, as a
	// throttled retry when paidThrottled: given back if it is not sent,
	// or refused by a layer of the chain and not retried. forecast says
	// that decide let it go at once because the breaker or the rate
	// limiter will refuse it: given back when they do, retried or not.
	paid, paidThrottled, forecast bool

	// What the call did, for its Report and Tracer.
	report   *Report
	attempts int
	hedges   int
	waited   time.Duration
	outcome  Outcome
	stop     StopReason
	sent     int // requests sent to the wire, for AttemptInfo.ResendCount
}

// hostBudget returns the retry budget of the call's host.
func (c *call) hostBudget() *hostBudget {
	if c.hb == nil {
		c.hb = c.t.budgets.get(c.req)
	}
	return c.hb
}

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
	unproven := c.write && !c.resendable()
	traced := unproven && c.needsTrace()
	c.trace = nil
	if !(c.stamp || c.cfg.attemptHeader != "" || !callerBody || traced || c.traced) {
		return c.req
	}
	ctx := c.req.Context()
	if c.traced {
		ctx = c.ctx
	}
	ready := c.cfg.hedging == nil && deadlineReadied(ctx, st) // a hedged attempt's copies have contexts of their own
	hidden := unproven && c.stamp && c.key != ""
	if x == nil && (ready || hidden) {
		x = new(attemptExtras)
	}
	if traced {
		ctx = c.traceWrite(ctx, st, x, ready)
	}
	if hidden {
		// The key of a write its host is not known to deduplicate is
		// ours, not the caller's: a Transport below, given this one's
		// attempts (New(New(base))), must not take it for the caller's
		// word that the host dedupes, and resend the write.
		if ctx != context.Context(&x.traced) {
			x.traced = traceCtx{Context: ctx}
			ctx = &x.traced
		}
		x.traced.stamped = c.key
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
// ambiguous failure: it carries a key and its host deduplicates by key.
func (c *call) resendable() bool {
	return c.key != "" && (c.callerKey || c.t.keys.honors(c.req.URL.Scheme, c.req.URL.Host))
}

// needsTrace reports whether an attempt of an unproven write is traced to
// learn whether it was written: only when a failure of it could then be
// retried.
func (c *call) needsTrace() bool {
	return c.cfg.maxRetries > 0
}

// learnKeys records that the host deduplicates writes by key when the
// attempt's answer says so, and forgets what it learned when the answer
// says otherwise (see ignoresKeys): a host rolled back to a version that
// ignores keys, or one taken for another from its answers.
func (c *call) learnKeys(st *attemptState, resp *http.Response) {
	ok := resp
	if ok == nil {
		ok = st.cut // a success whose body broke on its way
	}
	switch {
	case honorsKeys(st, resp):
		c.t.keys.learn(c.req.URL.Scheme, c.req.URL.Host)
	case ignoresKeys(st, ok, c.processed):
		c.t.keys.forget(c.req.URL.Scheme, c.req.URL.Host)
	}
	if ok != nil && ok.StatusCode/100 == 2 && c.write && c.key != "" {
		c.processed = true
	}
}

// decide returns whether attempt n is followed by another and the wait
// before it, or why not when the attempt's outcome was retryable.
func (c *call) decide(n, maxAttempts int, st *attemptState, resp *http.Response, err error, body *replayBody) (time.Duration, bool, StopReason) {
	if st.class == Success {
		return 0, false, "" // nothing below retries a success
	}
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
		// The server requires a key this call lacked: add one and retry
		// once, at once. This is the only case a Permanent outcome is
		// retried; the request was refused, so it was not processed, and
		// a server that requires keys honors them.
		c.key, c.stamp, c.keyRetry = newIdempotencyKey(), true, true
		c.t.keys.learn(c.req.URL.Scheme, c.req.URL.Host)
		c.header = nil
		if !body.replayable() {
			return 0, false, StopBodyNotReplayable
		}
		return 0, true, ""
	}
	if !st.class.Retryable() {
		return 0, false, ""
	}
	if c.write && !c.mayResend(st, resp, err) {
		return 0, false, StopUnsafeWrite
	}
	if !body.replayable() {
		return 0, false, StopBodyNotReplayable
	}
	if c.bo == nil {
		if c.cfg.newBackOff != nil {
			c.bo = c.cfg.newBackOff()
		}
		if c.bo == nil {
			c.bo = &expBackoff{base: c.cfg.backoffBase, maxDelay: c.cfg.backoffMax, rand: c.cfg.rand}
		}
	}
	delay := c.bo.NextBackOff()
	if delay == backoff.Stop {
		return 0, false, StopBackOff
	}
	if st.hasRetryAfter {
		if st.retryAfter > c.cfg.maxRetryAfter {
			return 0, false, StopRetryAfterTooLong
		}
		// A server's wait shorter than the backoff's base (Retry-After: 0,
		// a date past) is raised to it: no hot loop.
		delay = max(st.retryAfter+retryAfterSpread(st.retryAfter, c.cfg.rand), c.cfg.backoffBase)
		if !c.deadline.IsZero() && !time.Now().Add(delay).Before(c.deadline) {
			// The spread, not the server's wait, would pass the deadline:
			// the retry goes without it.
			delay = max(st.retryAfter, c.cfg.backoffBase)
		}
	}
	if !c.deadline.IsZero() && !time.Now().Add(delay).Before(c.deadline) {
		return 0, false, StopDeadline
	}
	if c.t.budgets != nil {
		// Paid for before the breaker's and the rate limiter's forecasts
		// below: a retry they expect refused goes at once, and is given
		// back what it paid when it is; but it may not be (the rate
		// limiter holds it until the breaker lets a probe through, or a
		// ResetHost cleared the pause), and it then reaches the host as
		// any retry does, paid for.
		throttled := st.class == Throttled || resp != nil && resp.StatusCode == http.StatusServiceUnavailable && st.hasRetryAfter
		if b := c.hostBudget(); b != nil {
			if !c.t.budgets.withdraw(b, throttled) {
				return 0, false, StopRetryBudget
			}
			c.paid, c.paidThrottled = true, throttled
		}
	}
	if c.t.breakers != nil && !errors.Is(err, ErrCircuitOpen) && c.t.breakers.openFor(c.req, delay) {
		// The host's breaker will still be open when the wait ends, and
		// would refuse the retry then: it is refused now instead, and
		// the call returns what it has, without waiting for nothing (the
		// refusal gives back what the retry paid). (A refusal a
		// Classifier retries waits as any retry does.)
		c.forecast = true
		return 0, true, ""
	}
	if c.t.rl != nil && !errors.Is(err, ErrRateLimited) && c.t.rl.refusesAfter(c.req, delay, c.deadline, c.cfg.maxRetryAfter) {
		// The same for the host's pause (another call's 429): it will
		// still hold past the call's deadline, or longer than the call
		// waits for, when the wait ends, and the rate limiter would
		// refuse the retry then.
		c.forecast = true
		return 0, true, ""
	}
	return delay, true, ""
}

// giveBackRetry gives back to the host's retry budget what decide took for
// the next attempt, when it is not sent after all.
func (c *call) giveBackRetry() {
	if c.paid {
		c.paid = false
		c.t.budgets.giveBack(c.hb, c.paidThrottled)
	}
}

// mayResend applies the write rule to an attempt of a write that failed:
// it may be resent when it provably was not processed (a 429, a 403
// classified Throttled, which refused it over a rate limit as GitHub's do,
// or an error that proves it never left or was never written), or when it
// carries a key its host deduplicates by.
func (c *call) mayResend(st *attemptState, resp *http.Response, err error) bool {
	switch {
	case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
		return true
	case resp != nil && resp.StatusCode == http.StatusForbidden && st.class == Throttled:
		return true
	case err != nil && (st.neverSent || c.trace.neverWritten()):
		return true
	}
	return c.resendable()
}

// stopIf returns why when the attempt's outcome was retryable, else "".
func stopIf(st *attemptState, why StopReason) StopReason {
	if st.class.Retryable() {
		return why
	}
	return ""
}

// refusedLocally reports whether err is a layer of the chain refusing an
// attempt without touching the network.
func refusedLocally(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTooManyInFlight)
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
	if reset == nil && c.req.Cancel == nil {
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
		case <-c.req.Cancel:
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
	return callerGaveUp(c.ctx, c.req.Cancel)
}

// callerGaveUp reports whether the caller of a request gave up on it: ctx,
// its context, is done, or cancel, its Cancel channel, is closed. It is the
// one rule of the call's cancellation (see call.canceled) and of an
// attempt's (see attemptOutcome).
func callerGaveUp(ctx context.Context, cancel <-chan struct{}) bool {
	return ctx.Err() != nil || isClosed(cancel)
}

// resetSignal is closed by the next Transport.ResetHost, which first
// records in it the host it resets and the signal that follows it.
type resetSignal struct {
	ch   chan struct{}
	m    hostMatcher
	next *resetSignal
}

func newResetSignal() *resetSignal {
	return &resetSignal{ch: make(chan struct{})}
}

// holdResponse keeps resp for a give-up that may follow: it reads at most
// maxDrain bytes of its body into memory, for at most maxReadWait (and not
// past the attempt's deadline), and closes the original, so that the
// connection is reused. A longer or slower body is cut there, and reading
// past the cut returns an error.
func holdResponse(resp *http.Response) *http.Response {
	var data []byte
	eof := false
	inner := resp.Body
	if db, ok := inner.(*deadlineBody); ok {
		inner = db.rc
	}
	if pb, ok := inner.(*prefixBody); ok && pb.eof && pb.err == nil {
		data, eof = pb.prefix, true
	} else {
		stop := abortAfter(resp.Body, nil, maxReadWait)
		var err error
		data, eof, err = readPrefix(resp.Body, resp.ContentLength, maxDrain)
		stop()
		if err != nil {
			eof = false
		}
	}
	resp.Body.Close()
	var rest io.Reader = bytes.NewReader(data)
	if !eof {
		rest = io.MultiReader(rest, errReader{errBodyTruncated})
	}
	resp.Body = io.NopCloser(rest)
	return resp
}

// errBodyTruncated is returned by the body of a response the Transport held
// after retrying past it, beyond the part it kept.
var errBodyTruncated = errors.New("resilient: response body truncated after a retry")

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
