package resilientotel

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilienthttp/resilient"
)

// countingProvider is a TracerProvider whose spans record nothing (those of
// the no-op provider) and which counts the spans started and ended.
type countingProvider struct {
	embedded.TracerProvider
	// own gives each span a span context of its own, not sampled (as an
	// SDK's span sampled out has), rather than its parent's.
	own            bool
	started, ended atomic.Int32
}

func (p *countingProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return &countingTracer{p: p}
}

type countingTracer struct {
	embedded.Tracer
	p *countingProvider
}

func (t *countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.p.started.Add(1)
	ctx, s := tracenoop.NewTracerProvider().Tracer("").Start(ctx, name, opts...)
	cs := &countingSpan{Span: s, p: t.p, sc: s.SpanContext()}
	if t.p.own {
		n := t.p.started.Load()
		cs.sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(n), byte(n >> 8), 1}})
	}
	return trace.ContextWithSpan(ctx, cs), cs
}

type countingSpan struct {
	trace.Span
	p  *countingProvider
	sc trace.SpanContext
}

func (s *countingSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *countingSpan) End(...trace.SpanEndOption) { s.p.ended.Add(1) }

// TestEverySpanEnds: a span that records nothing (a tracer that samples it
// out, no metric enabled) is ended all the same, as the API asks of every
// span started: a TracerProvider that tracks open spans sees none left.
func TestEverySpanEnds(t *testing.T) {
	for _, own := range []bool{false, true} {
		everySpanEnds(t, &countingProvider{own: own})
	}
}

func everySpanEnds(t *testing.T, tp *countingProvider) {
	base := &stub{steps: []step{{status: 503}, {status: 200}}}
	tr := resilient.New(base, resilient.WithBackoff(0, 0), Instrument(Config{TracerProvider: tp, Propagator: propagation.TraceContext{}}))
	for range 3 {
		req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
	}
	if s, e := tp.started.Load(), tp.ended.Load(); s == 0 || s != e {
		t.Errorf("spans of their own %v: %d spans started, %d ended; want every one ended", tp.own, s, e)
	}
}

// panickingPropagator injects nothing: it panics, as a propagator with a
// bug does.
type panickingPropagator struct{ propagation.TraceContext }

func (panickingPropagator) Inject(context.Context, propagation.TextMapCarrier) {
	panic("propagator")
}

// TestEverySpanEndsWhenUserCodePanics: a panic of the code a Config plugs
// in, which goes on to the caller, ends the spans started before it: the
// CLIENT span of an attempt whose Propagator panics (it was never ended:
// every attempt of a call through a buggy propagator left one open), and
// the INTERNAL span of the first call made after an SDK was installed
// (while the calls were idle) whose URLTemplate panics.
func TestEverySpanEndsWhenUserCodePanics(t *testing.T) {
	get := func(t *testing.T, tr http.RoundTripper) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Error("no panic reached the caller")
			}
		}()
		req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
		do(t, &http.Client{Transport: tr}, req)
	}
	t.Run("propagator", func(t *testing.T) {
		tp := &countingProvider{own: true}
		tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(Config{TracerProvider: tp, Propagator: panickingPropagator{}}))
		get(t, tr)
		if s, e := tp.started.Load(), tp.ended.Load(); s != 2 || e != 2 {
			t.Errorf("%d spans started, %d ended; want the call's and the attempt's, both ended", s, e)
		}
	})
	t.Run("template after idle", func(t *testing.T) {
		tp := &countingProvider{}
		cfg := Config{TracerProvider: tp, Propagator: propagation.TraceContext{}, URLTemplate: func(*http.Request) string {
			if tp.own {
				panic("template")
			}
			return ""
		}}
		tr := resilient.New(&stub{steps: []step{{status: 200}}}, Instrument(cfg))
		req, _ := http.NewRequest("GET", "https://api.test/v1/posts", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil { // idle: the tracer makes no span
			t.Fatalf("%d, %v", code, err)
		}
		tp.own = true // spans of their own from now on: an SDK installed
		get(t, tr)
		if s, e := tp.started.Load(), tp.ended.Load(); s != 2 || e != 2 {
			t.Errorf("%d spans started, %d ended; want the two calls', both ended", s, e)
		}
	})
}

// TestCallSpanEndsWhenProcessorPanicsOnClientSpan: a span processor that
// panics as a CLIENT span ends, when the call's last attempt is an error
// the Transport hands over (a 404), panics to the caller with the call's
// INTERNAL span ended all the same, as every span started must.
func TestCallSpanEndsWhenProcessorPanicsOnClientSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(panickingProcessor{trace.SpanKindClient}))
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: http.NoBody, Request: req}, nil
	})
	tr := resilient.New(base, Instrument(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}))
	func() {
		defer func() {
			if p := recover(); p != "processor exploded" {
				t.Errorf("recovered %v, want the processor's panic", p)
			}
		}()
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		tr.RoundTrip(req)
	}()
	var kinds []string
	for _, s := range rec.Ended() {
		kinds = append(kinds, fmt.Sprint(s.SpanKind()))
	}
	if got := strings.Join(kinds, ","); got != "client,internal" {
		t.Errorf("spans ended: %q, want the CLIENT span's and then the call's", got)
	}
}

// TestPendingClientSpansEndWhenProcessorPanics: when the call ends with
// two CLIENT spans waiting to be handed to the span processors (a hedged
// attempt and its copy, both answered 404), a processor that panics as the
// first ends does not leave the second, nor the call's, open.
func TestPendingClientSpansEndWhenProcessorPanics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(panickingProcessor{trace.SpanKindClient}))
	var tr resilient.Tracer = newInstrumentation(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}})
	req, _ := http.NewRequest("GET", "https://api.test/slow", nil)
	ctx := tr.StartCall(req.Context(), req)
	areq := req.WithContext(ctx)
	first, end1 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1})
	hedge, end2 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1, Hedge: 1, ResendCount: 1})
	end2(&http.Response{StatusCode: 404, ProtoMajor: 1, ProtoMinor: 1, Request: hedge}, nil)
	end1(&http.Response{StatusCode: 404, ProtoMajor: 1, ProtoMinor: 1, Request: first}, nil)
	func() {
		defer func() {
			if p := recover(); p != "processor exploded" {
				t.Errorf("recovered %v, want the processor's panic", p)
			}
		}()
		tr.EndCall(ctx, &resilient.Report{Attempts: 2, Hedges: 1, Outcome: resilient.OutcomePermanent, StatusCode: 404})
	}()
	var kinds []string
	for _, s := range rec.Ended() {
		kinds = append(kinds, fmt.Sprint(s.SpanKind()))
	}
	if got := strings.Join(kinds, ","); got != "client,client,internal" {
		t.Errorf("spans ended: %q, want both CLIENT spans and then the call's", got)
	}
}
