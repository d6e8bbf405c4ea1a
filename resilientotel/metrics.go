package resilientotel

import (
	"context"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
)

// Names of the metrics (see the package documentation).
const (
	MetricCallDuration       = "resilient.client.call.duration"
	MetricCallRetries        = "resilient.client.call.retries"
	MetricCallWait           = "resilient.client.call.wait.duration"
	MetricHedges             = "resilient.client.hedges"
	MetricRateLimitWait      = "resilient.client.rate_limit.wait.duration"
	MetricRateLimitRefusals  = "resilient.client.rate_limit.refusals"
	MetricBreakerRefusals    = "resilient.client.breaker.refusals"
	MetricInFlightRefusals   = "resilient.client.in_flight.refusals"
	MetricRetryBudgetRefusal = "resilient.client.retry_budget.refusals"
	MetricBreakerTransitions = "resilient.client.breaker.transitions"
	MetricBreakerState       = "resilient.client.breaker.state"
	MetricTransparentResends = "resilient.client.transparent_resends"
)

// Attribute keys of this package.
const (
	AttrAttempts      = attribute.Key("resilient.attempts")
	AttrHedges        = attribute.Key("resilient.hedges")
	AttrOutcome       = attribute.Key("resilient.outcome")
	AttrStopReason    = attribute.Key("resilient.stop_reason")
	AttrWaitKind      = attribute.Key("resilient.wait.kind")
	AttrWaitDuration  = attribute.Key("resilient.wait.duration")
	AttrAttemptNumber = attribute.Key("resilient.attempt.number")
	AttrHedge         = attribute.Key("resilient.hedge")
	AttrBreakerKey    = attribute.Key("resilient.breaker.key")
	AttrBreakerFrom   = attribute.Key("resilient.breaker.from")
	AttrBreakerTo     = attribute.Key("resilient.breaker.to")

	AttrTransparentResends = attribute.Key("resilient.transparent_resends")

	// AttrDeclined marks, true, the CLIENT span of an attempt that the
	// base RoundTripper declined with the bare http.ErrSkipAltProtocol,
	// never sent, and the INTERNAL span and call metrics of a call that
	// returned that sentinel for net/http to send the request itself (see
	// the package documentation).
	AttrDeclined = attribute.Key("resilient.declined")
)

// Values of resilient.wait.kind.
const (
	WaitBackoff     = "backoff"
	WaitRetryAfter  = "retry_after"
	WaitRateLimit   = "rate_limit"
	WaitMaxInFlight = "max_in_flight"
)

// Names of the INTERNAL span's events.
const (
	EventWait                 = "resilient.wait"
	EventCircuitOpen          = "resilient.circuit_open"
	EventRateLimited          = "resilient.rate_limited"
	EventTooManyInFlight      = "resilient.too_many_in_flight"
	EventRetryBudgetExhausted = "resilient.retry_budget_exhausted"
	EventHedge                = "resilient.hedge"
)

// instruments are the metrics of an instrumentation.
type instruments struct {
	duration           httpconv.ClientRequestDuration
	callDuration       metric.Float64Histogram
	retries            metric.Int64Histogram
	callWait           metric.Float64Histogram
	hedges             metric.Int64Counter
	rateLimitWait      metric.Float64Histogram
	rateLimitRefusals  metric.Int64Counter
	breakerRefusals    metric.Int64Counter
	inFlightRefusals   metric.Int64Counter
	budgetRefusals     metric.Int64Counter
	breakerTransitions metric.Int64Counter
	breakerState       metric.Int64Gauge
	transparent        metric.Int64Counter
}

// Bucket boundaries: the HTTP conventions' for durations, stretched to the
// default budget of a call (5 minutes) for calls and waits; gRPC's for
// retries, and 10.
func callBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300}
}

func waitBuckets() []float64 {
	return []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

func newInstruments(m metric.Meter) instruments {
	var in instruments
	var err error
	handle := func(e error) {
		if e != nil {
			otel.Handle(e)
		}
	}
	in.duration, err = httpconv.NewClientRequestDuration(m)
	handle(err)
	in.callDuration, err = m.Float64Histogram(MetricCallDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls through a resilient.Transport, from RoundTrip to its return, retries and waits included."),
		metric.WithExplicitBucketBoundaries(callBuckets()...))
	handle(err)
	in.retries, err = m.Int64Histogram(MetricCallRetries, metric.WithUnit("{retry}"),
		metric.WithDescription("Retries of a call: its attempts after the first, hedged copies excluded. A call without retries records nothing."),
		metric.WithExplicitBucketBoundaries(1, 2, 3, 4, 5, 10))
	handle(err)
	in.callWait, err = m.Float64Histogram(MetricCallWait, metric.WithUnit("s"),
		metric.WithDescription("Time a call waited between and before its attempts: backoff, Retry-After, the client-side rate limiter and the limit of attempts in flight. A call that did not wait records nothing."),
		metric.WithExplicitBucketBoundaries(waitBuckets()...))
	handle(err)
	in.hedges, err = m.Int64Counter(MetricHedges, metric.WithUnit("{hedge}"),
		metric.WithDescription("Hedged copies of attempts sent."))
	handle(err)
	in.rateLimitWait, err = m.Float64Histogram(MetricRateLimitWait, metric.WithUnit("s"),
		metric.WithDescription("Waits of attempts for the client-side rate limiter."),
		metric.WithExplicitBucketBoundaries(waitBuckets()...))
	handle(err)
	in.rateLimitRefusals, err = m.Int64Counter(MetricRateLimitRefusals, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts the client-side rate limiter refused."))
	handle(err)
	in.breakerRefusals, err = m.Int64Counter(MetricBreakerRefusals, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts a circuit breaker refused."))
	handle(err)
	in.inFlightRefusals, err = m.Int64Counter(MetricInFlightRefusals, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts the limit of attempts in flight to a host refused."))
	handle(err)
	in.budgetRefusals, err = m.Int64Counter(MetricRetryBudgetRefusal, metric.WithUnit("{retry}"),
		metric.WithDescription("Retries the retry budget refused."))
	handle(err)
	in.breakerTransitions, err = m.Int64Counter(MetricBreakerTransitions, metric.WithUnit("{transition}"),
		metric.WithDescription("State changes of the circuit breakers."))
	handle(err)
	in.breakerState, err = m.Int64Gauge(MetricBreakerState, metric.WithUnit("{state}"),
		metric.WithDescription("State of a circuit breaker after its last change: 0 closed, 1 half-open, 2 open."))
	handle(err)
	in.transparent, err = m.Int64Counter(MetricTransparentResends, metric.WithUnit("{request}"),
		metric.WithDescription("Requests net/http wrote again on its own, within one attempt, after a reused connection closed before an answer."))
	handle(err)
	return in
}

// attemptEnabled reports whether an instrument that an attempt records to
// is enabled.
func (m *instruments) attemptEnabled(ctx context.Context) bool {
	return m.duration.Enabled(ctx) || m.transparent.Enabled(ctx)
}

// callEnabled reports whether an instrument that a call or its attempts
// record to is enabled.
func (m *instruments) callEnabled(ctx context.Context) bool {
	return m.attemptEnabled(ctx) || m.callDuration.Enabled(ctx) || m.retries.Enabled(ctx) ||
		m.callWait.Enabled(ctx) || m.hedges.Enabled(ctx) || m.rateLimitWait.Enabled(ctx) ||
		m.rateLimitRefusals.Enabled(ctx) || m.breakerRefusals.Enabled(ctx) ||
		m.inFlightRefusals.Enabled(ctx) || m.budgetRefusals.Enabled(ctx)
}

// breakerChanged records a breaker's state change. The breaker's key, a
// URL's origin unless the Transport's Key function names it, is cut at
// maxURLLen, in valid UTF-8, as url.full is.
func (in *instrumentation) breakerChanged(c resilient.BreakerChange) {
	ctx := context.Background()
	key := AttrBreakerKey.String(boundedUTF8(c.Key, maxURLLen))
	if in.m.breakerTransitions.Enabled(ctx) {
		in.m.breakerTransitions.Add(ctx, 1, metric.WithAttributes(key,
			AttrBreakerFrom.String(c.From.String()), AttrBreakerTo.String(c.To.String())))
	}
	if in.m.breakerState.Enabled(ctx) {
		in.m.breakerState.Record(ctx, int64(c.To), metric.WithAttributes(key))
	}
}
