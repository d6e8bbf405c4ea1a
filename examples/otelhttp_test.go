package examples

import (
	"net/http"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilientotel"
	"github.com/resilienthttp/resilient/resilienttest"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
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

// otelSpans counts the spans of one GET against a persistent 500 through
// the client build makes with tp, by kind, the resend counts of the CLIENT
// spans (0 where the attribute is absent), and the distinct traceparent
// headers the server received.
func otelSpans(t *testing.T, build func(base http.RoundTripper, tp *sdktrace.TracerProvider) *http.Client) (client, internal int, resends []int64, parents int) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		srv := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		resp, err := build(srv.Base(), tp).Get(srv.URL + "/v1/posts")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		resp.Body.Close()
		for _, s := range rec.Ended() {
			switch s.SpanKind() {
			case trace.SpanKindInternal:
				internal++
			case trace.SpanKindClient:
				client++
				var n int64
				for _, a := range s.Attributes() {
					if a.Key == "http.request.resend_count" {
						n = a.Value.AsInt64()
					}
				}
				resends = append(resends, n)
			}
		}
		slices.Sort(resends)
		parents = len(srv.wire.Distinct("/v1/posts", "Traceparent"))
	})
	return client, internal, resends, parents
}

// TestOtelHTTPWithInstrument counts the spans of a failing call (6
// attempts) with resilientotel.Instrument, the Transport's own tracer,
// alone and with otelhttp outside or inside the Transport too: alone, one
// CLIENT span per attempt numbered by http.request.resend_count under one
// INTERNAL span for the call; with otelhttp, CLIENT spans twice over.
func TestOtelHTTPWithInstrument(t *testing.T) {
	inst := func(tp *sdktrace.TracerProvider) resilient.Option {
		return resilientotel.Instrument(resilientotel.Config{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	}
	otelOpts := func(tp *sdktrace.TracerProvider) []otelhttp.Option {
		return []otelhttp.Option{otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{})}
	}
	numbered := []int64{0, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name             string
		build            func(base http.RoundTripper, tp *sdktrace.TracerProvider) *http.Client
		client, internal int
		resends          []int64
	}{
		{"Alone", func(base http.RoundTripper, tp *sdktrace.TracerProvider) *http.Client {
			return &http.Client{Transport: resilient.New(base, inst(tp))}
		}, 6, 1, numbered},
		// otelhttp's span for the call is a CLIENT span over the six.
		{"OtelHTTPOutside", func(base http.RoundTripper, tp *sdktrace.TracerProvider) *http.Client {
			return NewTracedClient(resilient.New(base, inst(tp)), otelOpts(tp)...)
		}, 7, 1, append([]int64{0}, numbered...)},
		// otelhttp's span for each attempt is a CLIENT span under
		// resilientotel's, without a resend count.
		{"OtelHTTPInside", func(base http.RoundTripper, tp *sdktrace.TracerProvider) *http.Client {
			return &http.Client{Transport: resilient.New(otelhttp.NewTransport(base, otelOpts(tp)...), inst(tp))}
		}, 12, 1, []int64{0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, internal, resends, parents := otelSpans(t, tc.build)
			if client != tc.client || internal != tc.internal || !slices.Equal(resends, tc.resends) || parents != 6 {
				t.Errorf("%d CLIENT spans (resend counts %v), %d INTERNAL, %d traceparents; want %d (%v), %d, 6",
					client, resends, internal, parents, tc.client, tc.resends, tc.internal)
			}
		})
	}
}
