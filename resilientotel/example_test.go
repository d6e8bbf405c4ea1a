package resilientotel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilientotel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// flaky answers 503 to its first request and 200 to the others.
type flaky struct{ n int }

func (f *flaky) RoundTrip(req *http.Request) (*http.Response, error) {
	f.n++
	status := http.StatusOK
	if f.n == 1 {
		status = http.StatusServiceUnavailable
	}
	return &http.Response{StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// A call retried once: one INTERNAL span for the call, one CLIENT span per
// attempt, the second numbered by http.request.resend_count.
func ExampleInstrument() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	tr := resilient.New(&flaky{}, resilient.WithBackoff(0, 0), resilientotel.Instrument(resilientotel.Config{
		TracerProvider: tp,
		Propagator:     propagation.TraceContext{},
	}))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://api.example.com/v1/posts?page=2", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()

	for _, s := range spans.Ended() {
		line := s.SpanKind().String() + " " + s.Name()
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "http.response.status_code", "http.request.resend_count", "url.full", "resilient.attempts":
				line += " " + string(kv.Key) + "=" + kv.Value.String()
			}
		}
		fmt.Println(line)
	}
	// Output:
	// client GET url.full=https://api.example.com/v1/posts http.response.status_code=503
	// client GET url.full=https://api.example.com/v1/posts http.request.resend_count=1 http.response.status_code=200
	// internal resilient GET url.full=https://api.example.com/v1/posts resilient.attempts=2 http.response.status_code=200
}
