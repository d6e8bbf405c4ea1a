package resilient

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// callKey is the context key of what a caller set for its calls: their
// options (WithCallOptions), their Report (WithReport) and their
// idempotency key (WithIdempotencyKey), under one key so that a call finds
// all three in one walk up its context. Its value is a *callValues.
type callKey struct{}

// callValues are what a caller set for the calls made with one context.
type callValues struct {
	opts   []Option
	report *Report
	key    string      // the caller's idempotency key; "" for none
	bind   *keyBinding // the write key names; nil without a key
	// outer is the values these were derived from, those of the context
	// they were set on (nil for none): the values of the hops of one
	// chain of redirects share those of the context given to
	// http.Client, which every hop carries (see call.hopSpent).
	outer *callValues
}

// callValuesOf returns what the caller set for the calls made with ctx;
// zero values when nothing.
func callValuesOf(ctx context.Context) callValues {
	if v := callValuesIn(ctx); v != nil {
		return *v
	}
	return callValues{}
}

// derivedValues returns a copy of what the caller set for the calls made
// with ctx, derived from them (see callValues.outer), for a context
// derived from ctx to carry with what it sets.
func derivedValues(ctx context.Context) callValues {
	var cv callValues
	if outer := callValuesIn(ctx); outer != nil {
		cv = *outer
		cv.outer = outer
	}
	return cv
}

// callValuesIn returns what the caller set for the calls made with ctx,
// which no one may modify; nil when nothing.
func callValuesIn(ctx context.Context) *callValues {
	// The Transport calls it with a request's context, never nil (see
	// mustContext for the caller's).
	v, _ := ctx.Value(callKey{}).(*callValues)
	return v
}

// WithCallOptions returns a copy of ctx that makes the Transport apply opts,
// after its own options, to the calls made with it; options from an outer
// WithCallOptions apply first. For example, one attempt only for one call:
//
//	ctx = resilient.WithCallOptions(ctx, resilient.WithMaxRetries(0))
//	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
//
// Options that apply per call: WithMaxRetries, WithBackoff, WithBackOff,
// WithMaxElapsed, WithMaxElapsedSpent, WithMaxRetryAfter,
// WithAttemptTimeout, WithClassifier, WithHedging, WithoutHedging,
// WithoutIdempotencyKeys, WithIdempotencyMethods, WithMaxBufferedBody,
// WithBufferedResponse and WithAttemptHeader. The others configure state
// a Transport shares between its calls (breakers, rate limiter, retry
// budget, code tables, known hosts, observers, logger, tracer, quota
// store, limit of attempts in flight): WithCallOptions panics on them,
// naming them. WithMaxElapsedSpent applies per call only: New panics on
// it.
//
// An attempt cut by an attempt timeout or a budget that the call set
// tighter than the Transport's own is the caller's choice, as its
// context's deadline is: the host's breaker does not count it (see
// BreakerSettings), so that one caller's tight limit cannot open a healthy
// host's breaker for every caller.
//
// The options apply to every request made with ctx, as its deadline does,
// whatever its host: an SDK's auxiliary requests made with it (a token
// refresh, the next page, a credential fetch) included. None of them makes
// a write resendable to a host not known to deduplicate by key (a per-call
// Classifier aside, whose Throttled a 403 write is resent on), and the
// idempotency key of WithIdempotencyKey is sent with the one write it
// names only; but one attempt only, a tight attempt timeout or a
// Classifier written for one API is imposed on the others' requests too:
// derive ctx just before the call it is meant for. A nil ctx panics, as
// it does with context.WithValue.
func WithCallOptions(ctx context.Context, opts ...Option) context.Context {
	mustContext("WithCallOptions", ctx)
	probe := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&probe)
		}
	}
	if n := len(probe.perTransport); n > 0 {
		verb := "applies"
		if n > 1 {
			verb = "apply"
		}
		panic(fmt.Sprintf("resilient: WithCallOptions: %s %s per Transport, not per call", strings.Join(probe.perTransport, ", "), verb))
	}
	// What an outer call kept (its Report, its key, its options, which
	// apply first) stays; appending copies the outer options, which a
	// sibling context shares.
	cv := derivedValues(ctx)
	cv.opts = cv.opts[:len(cv.opts):len(cv.opts)]
	for _, o := range opts {
		if o != nil {
			cv.opts = append(cv.opts, o)
		}
	}
	return context.WithValue(ctx, callKey{}, &cv)
}

// CallMaxElapsed returns the budget a call made with ctx gets from the
// Transport: its own (MaxElapsed), as the options set for the call with
// WithCallOptions raise or lower it, less what WithMaxElapsedSpent counted
// as spent of it; zero for none, and a nanosecond when nothing is left of
// it, or less than 1ms (the call would fail at once). A layer above the
// Transport that waits before handing a call over (for a token) bounds its
// wait by it, and gives the time it waited with WithMaxElapsedSpent, so
// that its wait and the call stay within the budget the caller set. It
// reads the context's values only: ctx's deadline, which bounds the call
// too, is not reflected, nor is what the hops before a redirect's left of
// the budget (a hop has that, when less). It is safe to call at any time,
// from any goroutine. A nil ctx panics.
func (t *Transport) CallMaxElapsed(ctx context.Context) time.Duration {
	if ctx == nil {
		panic("resilient: CallMaxElapsed: nil Context")
	}
	if t.inner.rt == nil { // the zero Transport, which acts as New(nil)
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.CallMaxElapsed(ctx)
	}
	cfg := t.callConfig(callValuesIn(ctx))
	if cfg.budgetSpent {
		return time.Nanosecond // below its floor too: the call fails at once
	}
	return cfg.maxElapsed
}

// attemptValues is the context of the attempts of a call made with a
// Report: the call's, whose values (its options, its idempotency key) it
// keeps, without the Report, which is the caller's call's alone. A
// Transport below (New(New(base))), or a call made with an attempt's
// context (a base's token refresh), is not that call: it would fill the
// Report with what it did, added up with the call's through a redirect,
// and a hedged copy's, which may end after the call returned, would write
// over it as the caller reads it.
type attemptValues struct {
	context.Context
	cv callValues
}

// withoutReport returns the context of the attempts of a call made with
// ctx, whose values are cv (see attemptValues), from which they are
// derived.
func withoutReport(ctx context.Context, cv *callValues) context.Context {
	x := &attemptValues{Context: ctx, cv: *cv}
	x.cv.report, x.cv.outer = nil, cv
	return x
}

func (c *attemptValues) Value(key any) any {
	if key == (callKey{}) {
		return &c.cv
	}
	return c.Context.Value(key)
}

// AfterFunc registers f to run once c is done, as its parent's AfterFunc
// does when it has one (see traceCtx.AfterFunc).
func (c *attemptValues) AfterFunc(f func()) (stop func() bool) { return afterFunc(c.Context, f) }

// callConfig returns the configuration of a call with the options cv (nil
// for none): the Transport's own, or a copy with the call's options
// applied.
func (t *Transport) callConfig(cv *callValues) *config {
	if cv == nil || cv.opts == nil {
		return &t.cfg
	}
	cfg := new(config)
	*cfg = t.cfg
	for _, o := range cv.opts {
		o(cfg)
	}
	cfg.clampFloors()
	return cfg
}

// perTransport marks an option that configures state a Transport shares
// between its calls: WithCallOptions rejects it, naming each such option
// once, however often it was given.
func perTransport(c *config, name string) {
	if !slices.Contains(c.perTransport, name) {
		c.perTransport = append(c.perTransport, name)
	}
}

// mustContext panics when ctx, the parent of a context that fn derives
// (WithCallOptions, WithReport, WithIdempotencyKey), is nil, as
// context.WithValue does, naming fn, rather than on a nil dereference of
// the lookup of the values it carries.
func mustContext(fn string, ctx context.Context) {
	if ctx == nil {
		panic("resilient: " + fn + ": cannot create context from nil parent")
	}
}
