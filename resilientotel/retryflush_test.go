package resilientotel

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestRetriedResponseSpanEndsBeforeRetry: the CLIENT span of an attempt
// answered with a response that is retried (a 503) reaches the span
// processors once the Transport has read the response's body and decided
// to retry, before the backoff: not once the retry ended, which may be a
// Retry-After and an attempt timeout later (or never, if the process stops
// while the call waits).
func TestRetriedResponseSpanEndsBeforeRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &orderProcessor{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
		base := &stub{steps: []step{{status: 503, header: http.Header{"Retry-After": {"30"}}}, {status: 200}}}
		tr := resilient.New(base, resilient.WithBackoff(time.Second, time.Second),
			Instrument(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		got := strings.Join(p.log, ",")
		if want := "start internal,start client,end client,start client,end client,end internal"; got != want {
			t.Errorf("span processors saw %s, want %s", got, want)
		}
	})
}
