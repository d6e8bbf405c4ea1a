package resilientotel

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// slowStart is a span processor whose OnStart takes its time for the
// span started n-th (from 1): the time a sampler, the span processors and
// the scheduler may take while an attempt's CLIENT span starts. It holds
// that span's start until release is closed.
type slowStart struct {
	n       int32
	started atomic.Int32
	release chan struct{}
}

func (p *slowStart) OnStart(context.Context, sdktrace.ReadWriteSpan) {
	if p.started.Add(1) == p.n {
		<-p.release
	}
}
func (*slowStart) OnEnd(sdktrace.ReadOnlySpan)      {}
func (*slowStart) Shutdown(context.Context) error   { return nil }
func (*slowStart) ForceFlush(context.Context) error { return nil }

// TestHedgeEventOfLateCopy: a hedged copy that reached the base (the
// Transport counts it, resilient.hedges 1) while its CLIENT span was
// still starting when its attempt's answer came and the call returned has
// its resilient.hedge event, as a copy still in flight has (see the
// package documentation): the copy is held for its event when it reaches
// the Tracer, before its span starts. The call's span had
// resilient.hedges 1 and no event.
func TestHedgeEventOfLateCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		slow := &slowStart{n: 3, release: make(chan struct{})} // the call's span, the attempt's, the copy's
		tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans), sdktrace.WithSpanProcessor(slow))
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			select { // the attempt answers at 100ms; the copy, sent at 50ms, is canceled then
			case <-time.After(100 * time.Millisecond):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithHedging(resilient.Hedging{Delay: 50 * time.Millisecond}))
		var rep resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &rep), "GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		close(slow.release)
		synctest.Wait()
		if rep.Hedges != 1 {
			t.Fatalf("Report.Hedges %d, want 1: the copy reached the base", rep.Hedges)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		a := attrs(call.Attributes())
		if got := strings.Join(eventNames(call.Events()), ","); got != "resilient.hedge" {
			t.Errorf("call: resilient.hedges %s, events %q; want the copy's resilient.hedge event", a["resilient.hedges"], got)
		}
	})
}
