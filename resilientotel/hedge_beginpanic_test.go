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

// copyPanickingPropagator is the W3C propagator, but for its n-th Inject
// (from 1), which panics, as a propagator with a bug does.
type copyPanickingPropagator struct {
	propagation.TraceContext
	n       int32
	injects atomic.Int32
}

func (p *copyPanickingPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if p.injects.Add(1) == p.n {
		panic("propagator exploded")
	}
	p.TraceContext.Inject(ctx, c)
}

// TestHedgeCopyDroppedWhenItsSpanEndPanics: a hedged copy whose Propagator
// panics was never sent, and its CLIENT span ends before the panic goes
// on; when a span processor panics as that span ends, the copy held for
// its resilient.hedge event is dropped all the same: the call's span gets
// no event of a copy never sent, which the Transport does not count
// (Report.Hedges 0). Before, the drop came after the span's end, which the
// processor's panic skipped.
func TestHedgeCopyDroppedWhenItsSpanEndPanics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(panickingProcessor{trace.SpanKindClient}))
	var tr resilient.Tracer = newInstrumentation(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: &copyPanickingPropagator{n: 2}})
	req, _ := http.NewRequest("GET", "https://api.test/slow", nil)
	ctx := tr.StartCall(req.Context(), req)
	areq := req.WithContext(ctx)
	first, end1 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1})
	func() {
		defer func() {
			if p := recover(); p == nil {
				t.Error("the copy's StartAttempt did not panic")
			}
		}()
		tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1, Hedge: 1, ResendCount: 1})
	}()
	func() {
		defer func() { recover() }() // the attempt's span may end now: the processor panics
		end1(&http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: first}, nil)
	}()
	func() {
		defer func() { recover() }() // the CLIENT spans end with the call's: the processor panics
		tr.EndCall(ctx, &resilient.Report{Attempts: 1, Outcome: resilient.OutcomeSuccess, StatusCode: 200})
	}()
	for _, s := range rec.Ended() {
		if s.SpanKind() != trace.SpanKindInternal {
			continue
		}
		if got := strings.Join(eventNames(s.Events()), ","); got != "" {
			t.Errorf("call events [%s]; want none: the copy was never sent", got)
		}
		return
	}
	t.Fatal("the call's span did not end")
}
