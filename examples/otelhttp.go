package examples

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// NewTracedClient returns an HTTP client whose otelhttp transport is
// outside rt, the resilient.Transport: one CLIENT span per call, whose
// status and duration are those the caller sees (backoff included), and
// whose trace context is sent on every attempt, so that a traced server
// shows each attempt as a child of that span. otelhttp inside resilient
// would instead make one span per attempt, with nothing saying which is a
// retry, and no span for the call. resilientotel.Instrument, the
// Transport's own tracer, makes a span per attempt, numbered, under a span
// for the call: use it in place of otelhttp, not with it, which would
// double the CLIENT spans.
func NewTracedClient(rt http.RoundTripper, opts ...otelhttp.Option) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(rt, opts...)}
}
