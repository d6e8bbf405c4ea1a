package resilientotel

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilient"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// hookedProvider is a TracerProvider whose spans call hook before an event
// named event is added to them.
type hookedProvider struct {
	trace.TracerProvider
	event string
	hook  func()
}

func (p *hookedProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &hookedTracer{Tracer: p.TracerProvider.Tracer(name, opts...), p: p}
}

type hookedTracer struct {
	trace.Tracer
	p *hookedProvider
}

func (t *hookedTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, s := t.Tracer.Start(ctx, name, opts...)
	h := &hookedSpan{Span: s, p: t.p}
	return trace.ContextWithSpan(ctx, h), h
}

type hookedSpan struct {
	trace.Span
	p *hookedProvider
}

func (s *hookedSpan) AddEvent(name string, opts ...trace.EventOption) {
	if name == s.p.event {
		s.p.hook()
	}
	s.Span.AddEvent(name, opts...)
}

// TestHedgeEventOfLosingCopyKept: a hedged copy sent, which loses to the
// attempt and ends, canceled, on its own goroutine as the call returns (a
// Transport cancels its losers and does not wait for them), keeps its
// resilient.hedge event. The copy's end took it from the copies held, then
// added the event to the call's span after EndCall had ended that span,
// which took no event any more: an ordinary hedged call lost the event of
// a copy it had sent.
func TestHedgeEventOfLosingCopyKept(t *testing.T) {
	tel := newTelemetry()
	var block atomic.Bool
	block.Store(true)
	entered, release := make(chan struct{}), make(chan struct{})
	cfg := tel.config()
	cfg.TracerProvider = &hookedProvider{TracerProvider: tel.tp, event: EventHedge, hook: func() {
		if block.CompareAndSwap(true, false) {
			// The copy's goroutine, about to add the event: the call
			// returns meanwhile.
			close(entered)
			<-release
		}
	}}
	var tr resilient.Tracer = newInstrumentation(cfg)
	req, _ := http.NewRequest("GET", "https://api.test/slow", nil)
	ctx := tr.StartCall(context.Background(), req)
	areq := req.WithContext(ctx)
	_, end1 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1})
	_, end2 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1, Hedge: 1, ResendCount: 1})
	end1(&http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: areq}, nil)
	tr.Attempt(ctx, resilient.Attempt{Number: 1, Hedges: 1, StatusCode: 200, Outcome: resilient.OutcomeSuccess})

	loserDone := make(chan struct{})
	go func() {
		defer close(loserDone)
		end2(nil, context.Canceled) // the loser, canceled
	}()
	select {
	case <-entered:
		// The copy adds its event on its own goroutine: the call
		// ends before it does.
		tr.EndCall(ctx, &resilient.Report{Attempts: 2, Hedges: 1, Outcome: resilient.OutcomeSuccess, StatusCode: 200})
		close(release)
		<-loserDone
	case <-loserDone:
		// The copy's end added no event: the call's end adds it.
		block.Store(false)
		tr.EndCall(ctx, &resilient.Report{Attempts: 2, Hedges: 1, Outcome: resilient.OutcomeSuccess, StatusCode: 200})
	}

	calls := tel.ended(int(trace.SpanKindInternal))
	if len(calls) != 1 {
		t.Fatalf("%d call spans, want 1", len(calls))
	}
	if got := strings.Join(eventNames(calls[0].Events()), ","); got != EventHedge {
		t.Errorf("call events [%s]; want [%s]: the copy was sent, and Report.Hedges is 1", got, EventHedge)
	}
}

// TestHedgeEventKeptWhenProcessorPanics: a span processor that panics as a
// CLIENT span of the call ends, in EndCall, leaves the call's span with
// the resilient.hedge event of a copy still in flight, sent as far as
// anyone knows: the span ends all the same, and the events the call's end
// owes it were added after the CLIENT spans ended, which the panic skipped.
func TestHedgeEventKeptWhenProcessorPanics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(panickingProcessor{trace.SpanKindClient}))
	var tr resilient.Tracer = newInstrumentation(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}})
	req, _ := http.NewRequest("GET", "https://api.test/slow", nil)
	ctx := tr.StartCall(req.Context(), req)
	areq := req.WithContext(ctx)
	first, end1 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1})
	_, end2 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1, Hedge: 1, ResendCount: 1})
	// The attempt answers 404, handed over: its span waits for the
	// call's end; the copy is still in flight.
	end1(&http.Response{StatusCode: 404, ProtoMajor: 1, ProtoMinor: 1, Request: first}, nil)
	func() {
		defer func() {
			if p := recover(); p != "processor exploded" {
				t.Errorf("recovered %v, want the processor's panic", p)
			}
		}()
		tr.EndCall(ctx, &resilient.Report{Attempts: 2, Hedges: 1, Outcome: resilient.OutcomePermanent, StatusCode: 404})
	}()
	func() {
		defer func() { recover() }() // the copy's span ends at once: the processor panics again
		end2(nil, context.Canceled)
	}()
	for _, s := range rec.Ended() {
		if s.SpanKind() != trace.SpanKindInternal {
			continue
		}
		if got := strings.Join(eventNames(s.Events()), ","); got != EventHedge {
			t.Errorf("call events [%s]; want [%s]: the copy was sent, and Report.Hedges is 1", got, EventHedge)
		}
		return
	}
	t.Fatal("the call's span did not end")
}
