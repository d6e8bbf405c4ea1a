package resilient

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"
)

// An Option configures a Transport. Options are applied in order by New and
// NewClient; a later option overrides an earlier one of the same kind.
type Option func(*config)

// Defaults of the options, as documented in the README's option table.
const (
	DefaultMaxRetries      = 5
	DefaultBackoffBase     = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultMaxElapsed      = 5 * time.Minute
	DefaultMaxRetryAfter   = 60 * time.Second
	DefaultMaxBufferedBody = 1 << 20
	DefaultMaxPeek         = 64 << 10
	// DefaultIdempotencyHeader is the header that carries idempotency keys.
	DefaultIdempotencyHeader = "Idempotency-Key"
)

// config is the immutable configuration of a Transport, filled by options.
type config struct {
	maxRetries      int
	newBackOff      func() backoff.BackOff // WithBackOff; nil for the default schedule
	backoffBase     time.Duration
	backoffMax      time.Duration
	maxElapsed      time.Duration
	maxRetryAfter   time.Duration
	attemptTimeout  time.Duration
	maxBufferedBody int64
	// maxBufferedResponse is how much of a success's body is read within
	// its attempt (buffered.go); 0 for none.
	maxBufferedResponse int64

	// elapsedSpent is what WithMaxElapsedSpent counted as spent of the
	// call's budget before the call (maxElapsed is what it left), and
	// budgetSpent says it left nothing (or a budget given per call is
	// below durationFloor, see clampFloors): the call fails before its
	// first attempt. A later WithMaxElapsed clears both.
	elapsedSpent time.Duration
	budgetSpent  bool

	// attemptFloored says that the call's attempt timeout was given below
	// durationFloor and counts as it (see clampFloors): an attempt it cut
	// is not retried.
	attemptFloored bool

	// classification (classify.go)
	maxPeek    int64
	codes      map[string]Class
	classifier Classifier

	// idempotency (idempotency.go)
	noIdempotencyKeys  bool
	idempotencyHeader  string
	idempotencyMethods []string
	keyHosts           map[namedHost]bool // WithKeyHonoringHosts

	// circuit breakers (breaker.go)
	breaker          BreakerSettings
	noBreaker        bool
	breakerObservers []func(BreakerChange)

	// retry budget (budget.go)
	budget   RetryBudget
	noBudget bool

	// rate limiting (ratelimit.go, ratelimit_options.go)
	noRateLimit  bool
	rateLimit    rate.Limit // static limit per partition; 0 for none
	rateBurst    int
	rateLimitKey func(*http.Request) string
	rateParsers  []RateLimitParser
	quotaStore   QuotaStore // quota.go

	// observation (observe.go)
	observers     []func(Attempt)
	logger        *slog.Logger
	attemptHeader string

	// hedging (hedge.go); nil for none
	hedging *Hedging

	// the per-host limit of attempts in flight (bulkhead.go); 0 for none
	maxInFlight int

	// instrumentation (tracer.go)
	tracer       Tracer
	ctxObservers []func(context.Context, Attempt)

	// perTransport names the options given that configure state shared by
	// a Transport's calls (see WithCallOptions).
	perTransport []string
	// perCallOnly names an option given that applies per call only (see
	// WithMaxElapsedSpent): New rejects it. "" for none.
	perCallOnly string

	// rand returns a uniform value in [0, n); nil means math/rand/v2. Tests
	// set it for deterministic jitter.
	rand func(n int64) int64
}

func defaultConfig() config {
	return config{
		maxRetries:         DefaultMaxRetries,
		backoffBase:        DefaultBackoffBase,
		backoffMax:         DefaultBackoffMax,
		maxElapsed:         DefaultMaxElapsed,
		maxRetryAfter:      DefaultMaxRetryAfter,
		maxBufferedBody:    DefaultMaxBufferedBody,
		maxPeek:            DefaultMaxPeek,
		idempotencyHeader:  DefaultIdempotencyHeader,
		idempotencyMethods: []string{http.MethodPost, http.MethodPatch},
	}
}

// durationFloor is the least non-zero duration the options that bound or
// pace the network accept: below it, a value is a units mistake (5 written
// for five seconds is 5ns). See checkFloors.
const durationFloor = time.Millisecond

// checkFloors panics on a value of c that can never be right on a
// Transport: a units mistake. New calls it; a call's options are clamped
// instead, or apply as given (clampFloors).
func (c *config) checkFloors() {
	mustNotBeBelowFloor("WithAttemptTimeout", c.attemptTimeout)
	mustNotBeBelowFloor("WithMaxElapsed", c.maxElapsed)
	mustNotBeBelowFloor("WithMaxRetryAfter", c.maxRetryAfter)
	if c.hedging != nil {
		mustNotBeBelowFloor("WithHedging Delay", c.hedging.Delay)
	}
}

// clampFloors raises a call's values below their floor (see checkFloors)
// to it: a value computed per call must not panic. A budget
// (WithMaxElapsed) below its floor is spent: the call fails at once,
// before its first attempt; the longest server's wait (WithMaxRetryAfter)
// applies as given.
func (c *config) clampFloors() {
	if belowFloor(c.maxElapsed) {
		// A budget below the floor given per call (or what
		// WithMaxElapsedSpent left of one): no attempt would have time
		// to be answered, and the call fails before its first, as one
		// WithMaxElapsedSpent left nothing does.
		c.budgetSpent = true
	}
	if belowFloor(c.attemptTimeout) {
		c.attemptTimeout, c.attemptFloored = durationFloor, true
	}
	if h := c.hedging; h != nil && belowFloor(h.Delay) {
		clamped := *h
		clamped.Delay = durationFloor
		c.hedging = &clamped
	}
}

// belowFloor reports whether d is not zero and below durationFloor.
func belowFloor(d time.Duration) bool { return d > 0 && d < durationFloor }

// mustNotBeBelowFloor panics if d is not zero and below durationFloor.
func mustNotBeBelowFloor(opt string, d time.Duration) {
	if belowFloor(d) {
		panic(fmt.Sprintf("resilient: %s: %v is below the floor of %v (a time.Duration counts nanoseconds: 5 is 5ns, 5*time.Second five seconds)", opt, d, durationFloor))
	}
}

func mustNotBeNegative[T int | int64 | time.Duration](opt string, v T) {
	if v < 0 {
		panic(fmt.Sprintf("resilient: %s: negative value %v", opt, v))
	}
}

// WithMaxRetries sets how many times a call is retried after its first
// attempt (default 5). Zero means a single attempt, and a single request:
// no hedged copy of it either (see WithHedging); math.MaxInt means no
// limit but the call's budget (WithMaxElapsed). It panics if n is negative.
//
// Below the Transport, net/http's own Transport writes a request a second
// time, within the same attempt, when the keep-alive connection it reused
// closed before answering and the request is replayable by its rules (a
// GET, HEAD, OPTIONS or TRACE, or a request with an Idempotency-Key
// header, whose body is empty or has GetBody): no RoundTripper above it
// sees that resend, and the server may count two requests for one
// attempt. (A write the Transport may not resend is kept
// out of that rule: see the write rule in WithKeyHonoringHosts.)
func WithMaxRetries(n int) Option {
	mustNotBeNegative("WithMaxRetries", n)
	return func(c *config) { c.maxRetries = n }
}

// WithBackoff sets the base and the cap of the delay between attempts
// (default 500ms and 30s): the delay before retry n (n = 0 for the first
// retry) is min(maxDelay, base·2^n + jitter), with jitter uniform in
// [0, base·2^n). A server's Retry-After shorter than base is raised to
// base and spread by up to 10% of it, never past maxDelay. A zero base
// means no delay at all (WithBackoff(0, 0)). It panics if either value is
// negative, or if maxDelay is below a non-zero base
// (WithBackoff(time.Second, 0) would silently mean no wait). It replaces a
// BackOff set with WithBackOff before it, as a later WithBackOff replaces
// it.
func WithBackoff(base, maxDelay time.Duration) Option {
	mustNotBeNegative("WithBackoff base", base)
	mustNotBeNegative("WithBackoff maxDelay", maxDelay)
	if maxDelay < base {
		panic(fmt.Sprintf("resilient: WithBackoff: maxDelay %v is below base %v", maxDelay, base))
	}
	return func(c *config) { c.backoffBase, c.backoffMax, c.newBackOff = base, maxDelay, nil }
}

// WithMaxElapsed sets the whole budget of one RoundTrip, waits included
// (default 5m). A wait that would end past it is not started, nor a retry
// that would start with less than it needs left of it (or of the context's
// deadline): a tenth of the time the host took with the attempt before it,
// and 1ms at least, or, for a write that may not be resent, the whole time
// the host took; the
// last result is returned instead (StopDeadline). An attempt still running
// when it ends is cut, as by WithAttemptTimeout, sending its request body
// included (the response body is the caller's once handed over, and the
// budget no longer applies to it): a call whose upload may take longer
// needs a larger budget, for that call if need be (WithCallOptions). A
// retry cut so returns the response retried past, if an earlier attempt got
// one (the answer a plain client would have returned), rather than the
// timeout; unless it is a write's that may have reached the server, which
// may have processed it: the earlier answer (a 429, say) would tell the
// caller that it was not. The hops of a redirect that http.Client follows
// (each a RoundTrip) share one budget: a hop has what the hops before it
// left of it (the time http.Client and the caller take between hops not
// counted), and one left nothing, or less than 1ms, fails before its first
// attempt, with the budget's timeout; a request sent again with the same
// Response has a budget of its own. So they do when a middleware above the Transport returns a shallow
// copy of the redirect (see Chain); a copy that cannot be told from that of
// another send of its request gets the least budget any of them left. Zero
// means no budget beyond the request's context. It panics if d is negative.
// A non-zero d below 1ms is taken for a units mistake (30, meant as 30
// seconds, is 30ns: every call would fail at its first attempt): New panics
// on it; given per call, it applies as given, and the call fails at once,
// before its first attempt.
//
// To cut an attempt, the Transport sends it as a copy of the request with a
// context of its own (one allocation for both, and no runtime timer: one
// timer per Transport fires every deadline; over http.Transport, which
// derives a context of its own from it, four allocations more; under a
// caller's context that can be canceled, two more, to follow it), unless
// the request's context has a deadline that ends first (as with
// http.Client.Timeout or context.WithTimeout): the base then enforces that
// one, and the attempt costs nothing more.
func WithMaxElapsed(d time.Duration) Option {
	mustNotBeNegative("WithMaxElapsed", d)
	return func(c *config) { c.maxElapsed, c.elapsedSpent, c.budgetSpent = d, 0, false }
}

// WithMaxElapsedSpent counts d as spent of the call's budget
// (WithMaxElapsed, the Transport's or one set for the call before it): the
// call has what d left of it, and fails at once, before its first attempt
// (no layer of the chain sees it), with the budget's timeout, when d left
// nothing, or less than 1ms; a call without a budget stays without one. For a hop of a
// redirect, what it counts beyond what a context given to http.Client
// counted (which every hop carries, and is counted once) is spent of what
// the hops before it left, each hop's whole, whatever the hop before it
// counted. A layer above the Transport that spent part of a call's time before
// handing it over (a wait for a token) gives it per call, with
// WithCallOptions, so that its wait and the call stay within the call's
// budget together, whether its caller raised or lowered it; the times
// given by nested WithCallOptions add up. It applies per call only: New
// panics on it, as it does if d is negative.
func WithMaxElapsedSpent(d time.Duration) Option {
	mustNotBeNegative("WithMaxElapsedSpent", d)
	return func(c *config) {
		c.perCallOnly = "WithMaxElapsedSpent"
		switch {
		case c.maxElapsed == 0: // no budget to spend
		case c.maxElapsed > d:
			c.maxElapsed -= d
			c.elapsedSpent += d
		default:
			c.elapsedSpent += c.maxElapsed - 1
			c.maxElapsed = 1 // nothing left (see budgetSpent)
			c.budgetSpent = true
		}
	}
}

// MaxElapsed returns the budget of one RoundTrip the Transport was made
// with (WithMaxElapsed; DefaultMaxElapsed for the zero Transport), zero
// for none. The budget ends once the Transport hands a response over, so
// a client that must also bound the read of its body, as
// http.Client.Timeout does, takes it from here rather than from a
// constant that ignores the options:
//
//	t := resilient.New(nil, opts...)
//	client := &http.Client{Transport: t, Timeout: t.MaxElapsed()}
//
// A budget raised for one call (WithCallOptions) is not reflected.
func (t *Transport) MaxElapsed() time.Duration {
	if t.inner.rt == nil { // the zero Transport, which acts as New(nil)
		return DefaultMaxElapsed
	}
	return t.cfg.maxElapsed
}

// WithMaxRetryAfter sets the longest Retry-After the transport will wait
// for (default 60s). A response asking for a longer wait is returned to the
// caller at once. The limit applies to the server's wait: a wait within it
// is spread by a small jitter (at most 10% of it and one second, so that
// callers paused together do not come back together), which may take the
// wait past d by that much. It also bounds the rate limiter's waits for
// what the servers set: a pause after a 429, a spent quota's reset, a turn
// of a learned pace, and a QuotaStore's token (held for later, or none to
// be had), which hold one attempt no longer than d in all, one after
// another (and a tenth of d past that bound at most, after a pause or a
// reset: see the README's Bounds); an attempt they would hold longer is
// refused with ErrRateLimited. It panics if d is negative. Zero waits for no
// server's wait but "Retry-After: 0". A non-zero d below 1ms is taken for
// a units mistake (60, meant as a minute, is 60ns: every Retry-After
// would be returned at once, and every pause after a 429 would refuse the
// host's calls): New panics on it; given per call, it applies as given.
func WithMaxRetryAfter(d time.Duration) Option {
	mustNotBeNegative("WithMaxRetryAfter", d)
	return func(c *config) { c.maxRetryAfter = d }
}

// WithAttemptTimeout bounds each attempt until its response headers arrive
// (default 0: no bound beyond the request's context), and then until the
// Transport has read what it reads of the response itself: the envelope of
// an error response (see WithMaxPeek) or, for a success whose body it
// reads within the attempt (WithBufferedResponse), that body. A timed-out
// attempt is a retryable network timeout. The body of a returned response
// is the caller's, no longer bounded, and stays readable; but an error
// body that stalled past the deadline while its envelope was read yields
// the bytes read, then the error that cut it. It panics if d is negative.
//
// A non-zero d below 1ms is taken for a units mistake (5, meant as five
// seconds, is 5ns: every attempt would time out, and be retried for
// seconds): New panics on it. Given per call (WithCallOptions), where it
// may be computed, it counts as 1ms instead, and an attempt it cuts (before
// its headers, or while its error body is peeked at) is not retried
// (StopDeadline; StopUnsafeWrite for a write that may have been processed):
// each retry would be cut alike, and the call fails at once, as a plain
// client's with such a Timeout.
func WithAttemptTimeout(d time.Duration) Option {
	mustNotBeNegative("WithAttemptTimeout", d)
	return func(c *config) { c.attemptTimeout = d }
}

// WithMaxBufferedBody sets how much of a request body without GetBody is
// kept to replay it on a retry (default 1 MiB); none is kept for a call
// that makes a single attempt (WithMaxRetries(0)). A larger body is sent once
// and the request is not retried after its body started to be sent. A body
// that implements io.Seeker and can tell where it stands (an *os.File of a
// regular file) is not kept, whatever its size: each retry seeks it back to
// where the call found it, once an earlier attempt's read of it in progress
// ends; a retry waits for that read no longer than the call's context and
// budget (WithMaxElapsed) allow, and a source whose Read stalls past them
// ends the retries, the call returning the last response. A body in
// memory with a GetBody (http.NewRequest's) is copied for a retry or a
// hedged copy only up to n bytes: a larger one is read from the caller's
// bytes, not copied, as a plain client's resend through GetBody reads
// them. It panics if n is negative.
func WithMaxBufferedBody(n int64) Option {
	mustNotBeNegative("WithMaxBufferedBody", n)
	return func(c *config) { c.maxBufferedBody = n }
}

// WithObserver adds fn to the functions called once per attempt,
// synchronously, before any wait that follows it. fn must not block for
// long: it runs on the caller's goroutine. A nil fn is ignored.
func WithObserver(fn func(Attempt)) Option {
	return func(c *config) {
		perTransport(c, "WithObserver")
		if fn != nil {
			c.observers = append(c.observers, fn)
		}
	}
}

// Options returns an Option that applies opts in order, nil ones skipped, as
// if they had been given one by one where it is given. It lets a package
// hand several options over as one, such as an instrumentation that sets a
// Tracer and a breaker observer. Options that configure a Transport's
// shared state keep that mark (see WithCallOptions).
func Options(opts ...Option) Option {
	opts = append([]Option(nil), opts...)
	return func(c *config) {
		for _, o := range opts {
			if o != nil {
				o(c)
			}
		}
	}
}

// holdsNil reports whether v, an interface value given to an option, is
// nil or holds a nil pointer or func: a variable of the implementation's
// type left unset, whose methods would fail every call. The options that
// take an interface call it when they are made, and Chain on what each
// middleware returns; a call, on the BackOff its WithBackOff factory
// makes, once it retries: never on a success.
func holdsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// withRand makes jitter deterministic in tests.
func withRand(rnd func(int64) int64) Option {
	return func(c *config) { c.rand = rnd }
}
