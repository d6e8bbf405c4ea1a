package examples

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// otelSeries makes a series of GETs against a persistent 500 through one
// client build makes, with spans recorded in memory and W3C trace context
// propagated, and returns the server attempts, the spans ended and the
// distinct traceparent headers sent, each for the first call and for the
// series.
func otelSeries(t *testing.T, build func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client) (attempts, spans, parents measurement) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		srv := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		c := build(srv.Base(), otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
		first := true
		attempts = series(seriesCalls, func() int { return srv.Hits("/v1/posts") }, func(int) {
			resp, err := c.Get(srv.URL + "/v1/posts")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", resp.StatusCode)
			}
			if first {
				first = false
				spans.First, parents.First = len(rec.Ended()), len(srv.wire.Distinct("/v1/posts", "Traceparent"))
				if s := rec.Ended(); len(s) > 0 && s[len(s)-1].Status().Code != codes.Error {
					t.Errorf("span status %v, want Error (a 500)", s[len(s)-1].Status())
				}
			}
		})
		spans.Total, spans.Calls = len(rec.Ended()), seriesCalls
		parents.Total, parents.Calls = len(srv.wire.Distinct("/v1/posts", "Traceparent")), seriesCalls
	})
	return attempts, spans, parents
}

// TestOtelHTTP counts the attempts and spans of failing calls with
// otelhttp inside resilient (before) and outside it (the recipe).
func TestOtelHTTP(t *testing.T) {
	outside, outSpans, outParents := otelSeries(t, func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client {
		return NewTracedClient(resilient.New(base), opts...)
	})
	inside, inSpans, inParents := otelSeries(t, func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client {
		return &http.Client{Transport: resilient.New(otelhttp.NewTransport(base, opts...))}
	})
	// The same attempts: otelhttp does not retry.
	want := measurement{6, 110, seriesCalls}
	if outside != want || inside != want {
		t.Errorf("server attempts: outside %+v, inside %+v; want %+v for both", outside, inside, want)
	}
	// Outside: one span per call, ended with the final 500, whose trace
	// context every attempt of the call carried.
	if outSpans != (measurement{1, 100, seriesCalls}) || outParents != outSpans {
		t.Errorf("outside: spans %+v, distinct traceparents %+v; want one per call", outSpans, outParents)
	}
	// Inside: one span per attempt, each sent as its attempt's parent.
	if inSpans != inside || inParents != inside {
		t.Errorf("inside: spans %+v, distinct traceparents %+v; want one per attempt, %+v", inSpans, inParents, inside)
	}
	checkDocRow(t, "otelhttp", "GET, 500 on every attempt", inside, outside)
}
