package resilient

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
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
// attempt produced one that can be returned. The response's Request is
// the caller's request, as http.Transport's is, not the copy an attempt
// sent (under a Tracer, a copy of it with the Tracer's context); a base
// that sets a request of its own there keeps it, as under a plain client.
// A ClientTrace in the request's context fires for each attempt sent, and
// for each hedged copy. A base that declines the request with
// http.ErrSkipAltProtocol (an alternate protocol's RoundTripper, registered
// with http.Transport.RegisterProtocol, without a connection to the host)
// has that very error returned at once, not retried nor counted by the
// host's breaker, so that the http.Transport above sends the request itself,
// as it does under the base alone; a retry it declines ends the call as a
// retry refused does, with the earlier attempt's answer or error (the
// http.Transport above would send again what the host may have processed),
// and, sent by no one, gives back its turn of the rate limiter's pace, its
// body closed; a hedged copy it declines is no hedge (see Hedging).
// The sentinel wrapped (by a middleware, or a Transport below) ends the call
// at once too, counted by no breaker: net/http sends nothing itself for it. A
// write the Transport keyed itself keeps its key through a 307 or 308 on its
// host: the request http.Client follows it with is the same write, sent on.
// It does when a middleware above the Transport returns a shallow copy of
// the redirect too (a logging one, say), which shares the redirect's Header:
// a copy whose Request or Header was replaced cannot be told from that of
// another send of its request, nor can a copy of a redirect already
// followed, and draws a key of its own rather than risk another write's.
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
// is garbage once the call is done, its timers included. Put one layer of
// retries in a chain, not two: a Transport over another (or over an SDK's
// client that retries itself) makes each of its attempts a whole call of
// the one below: with the defaults, a first call to a failing host reached
// it 16 times where one Transport sends 6 (the retry budgets bound the
// calls after it: 6, then 1).
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

	// redirects keeps the keys of writes answered with a 307 or 308 for
	// the requests that follow them.
	redirects redirectKeys

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
// middleware by its index, if one returns a nil RoundTripper, or one that
// holds a nil pointer or func (a constructor's (*Signer)(nil)): the
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
			if rt = mws[i](rt); holdsNil(rt) {
				panic(fmt.Sprintf("resilient: Chain: middleware %d returned a nil RoundTripper", i))
			}
		}
	}
	return rt
}

// New returns a Transport that sends attempts through base; a nil base
// means http.DefaultTransport. It panics on an invalid option value, such
// as a negative duration, or a units mistake: a timeout, budget, longest
// Retry-After or hedge delay below 1ms but not zero (see
// WithAttemptTimeout); and on an option that applies per call only
// (WithMaxElapsedSpent).
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
	if cfg.perCallOnly != "" {
		panic(fmt.Sprintf("resilient: New: %s applies per call (WithCallOptions), not per Transport", cfg.perCallOnly))
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
		base:     base,
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
		t.rl.slots = t.bulkhead != nil
		t.rl.resets = &t.resets // for the waits of a partition removed from the table
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

// RoundTrip sends req, retrying as configured. See Transport for the rules.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.inner.rt == nil {
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.RoundTrip(req)
	}
	if req.URL == nil || req.Header == nil {
		return nil, refuseUnsendable(req)
	}
	// Built field by field: a composite literal would build the whole
	// call in a temporary and copy it.
	var c call
	c.t, c.req, c.ctx, c.start = t, req, req.Context(), t.clock.now()
	cv := callValuesIn(c.ctx) // read in place: no copy of the caller's values
	c.cfg = t.callConfig(cv)
	if cv != nil {
		c.report, c.ctxKey, c.ctxBind = cv.report, cv.key, cv.bind
		if c.cfg.budgetSpent && c.ctx.Err() == nil {
			c.ctx, c.stop = budgetSpentContext(c.ctx), StopDeadline
		}
	}
	if tr := t.cfg.tracer; tr != nil {
		c.ctx = c.startCall(tr)
		c.traced = c.ctx != req.Context()
	}
	if c.report != nil {
		c.attemptCtx = withoutReport(c.ctx, cv) // the Report is this call's alone
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

// putState returns a finished call's attempt state to the pool, cleared so
// that it holds no response data.
func (t *Transport) putState(st *attemptState) {
	st.reset()
	t.states.Put(st)
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
