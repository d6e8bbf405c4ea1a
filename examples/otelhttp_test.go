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

// otelRun makes one GET against a persistent 500 through the client build
// makes, with spans recorded in memory and W3C trace context propagated,
// and returns the server attempts, the ended spans and the distinct
// traceparent headers the server saw.
func otelRun(t *testing.T, build func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client) (attempts int, spans []sdktrace.ReadOnlySpan, parents int) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		srv := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		c := build(srv.Transport(), otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
		resp, err := c.Get(srv.URL + "/v1/posts")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", resp.StatusCode)
		}
		attempts, spans, parents = srv.Hits("/v1/posts"), rec.Ended(), len(srv.Distinct("/v1/posts", "Traceparent"))
	})
	return attempts, spans, parents
}

// TestOtelHTTP counts the spans of one call retried 5 times with otelhttp
// outside resilient (the recipe) and inside it.
func TestOtelHTTP(t *testing.T) {
	outside, outSpans, outParents := otelRun(t, func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client {
		return NewTracedClient(resilient.New(base), opts...)
	})
	inside, inSpans, inParents := otelRun(t, func(base http.RoundTripper, opts ...otelhttp.Option) *http.Client {
		return &http.Client{Transport: resilient.New(otelhttp.NewTransport(base, opts...))}
	})
	if outside != 6 || inside != 6 {
		t.Errorf("server attempts: outside %d, inside %d; want 6 and 6", outside, inside)
	}
	// Outside: one span for the call, ended with the final 500, whose
	// trace context every attempt carried.
	if len(outSpans) != 1 || outParents != 1 {
		t.Errorf("outside: %d spans, %d distinct traceparents; want 1 and 1", len(outSpans), outParents)
	} else if s := outSpans[0].Status(); s.Code != codes.Error {
		t.Errorf("outside: span status %v, want Error (the final 500)", s)
	}
	// Inside: one span per attempt, each sent as its attempt's parent.
	if len(inSpans) != 6 || inParents != 6 {
		t.Errorf("inside: %d spans, %d distinct traceparents; want 6 and 6", len(inSpans), inParents)
	}
	checkDocRow(t, "otelhttp", "GET, 500 on every attempt", inside, outside)
}
