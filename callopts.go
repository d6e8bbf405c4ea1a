package resilient

import (
	"context"
	"fmt"
	"strings"
)

// callOptionsKey is the context key of a call's options.
type callOptionsKey struct{}

// callOptions are the options of calls made with one context.
type callOptions struct {
	opts []Option
}

// WithCallOptions returns a copy of ctx that makes the Transport apply opts,
// after its own options, to the calls made with it; options from an outer
// WithCallOptions apply first. For example, one attempt only for one call:
//
//	ctx = resilient.WithCallOptions(ctx, resilient.WithMaxRetries(0))
//	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
//
// Options that apply per call: WithMaxRetries, WithBackoff, WithBackOff,
// WithMaxElapsed, WithMaxRetryAfter, WithAttemptTimeout, WithClassifier,
// WithHedging, WithoutHedging, WithoutIdempotencyKeys,
// WithIdempotencyMethods, WithMaxBufferedBody and WithAttemptHeader. The
// others configure state a Transport shares between its calls (breakers,
// rate limiter, retry budget, code tables, known hosts, observers, logger,
// tracer, quota store): WithCallOptions panics on them, naming them.
func WithCallOptions(ctx context.Context, opts ...Option) context.Context {
	probe := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&probe)
		}
	}
	if len(probe.perTransport) > 0 {
		panic(fmt.Sprintf("resilient: WithCallOptions: %s applies per Transport, not per call", strings.Join(probe.perTransport, ", ")))
	}
	co := &callOptions{}
	if outer, ok := ctx.Value(callOptionsKey{}).(*callOptions); ok {
		co.opts = append(co.opts, outer.opts...)
	}
	for _, o := range opts {
		if o != nil {
			co.opts = append(co.opts, o)
		}
	}
	return context.WithValue(ctx, callOptionsKey{}, co)
}

// callConfig returns the configuration of a call made with ctx: the
// Transport's own, or a copy with the call's options applied.
func (t *Transport) callConfig(ctx context.Context) *config {
	co, ok := ctx.Value(callOptionsKey{}).(*callOptions)
	if !ok {
		return &t.cfg
	}
	cfg := new(config)
	*cfg = t.cfg
	for _, o := range co.opts {
		o(cfg)
	}
	return cfg
}

// perTransport marks an option that configures state a Transport shares
// between its calls: WithCallOptions rejects it.
func perTransport(c *config, name string) {
	c.perTransport = append(c.perTransport, name)
}
