package resilientotel

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// noopConfig is a Config on no-op providers, with the W3C propagator.
func noopConfig() Config {
	return Config{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
	}
}

// cannedRT answers every request with a 200 and an empty body, reusing
// what it can, so that a benchmark measures the layers above it.
type cannedRT struct{ status int }

func (c cannedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// scriptRT answers 503 to all but every n-th request, which gets a 200:
// each call takes n attempts.
type scriptRT struct{ n, i int }

func (s *scriptRT) RoundTrip(req *http.Request) (*http.Response, error) {
	s.i++
	status := http.StatusServiceUnavailable
	if s.i%s.n == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// callShape is a kind of call the benchmarks and the allocation tests
// make: its attempts, the base that answers them, and the options that
// make it retry without waiting.
type callShape struct {
	name     string
	attempts int
	base     func() http.RoundTripper
	opts     []resilient.Option
}

// callShapes returns the calls of one attempt ("1attempt") and of three,
// two of them retried past a 503 without waiting ("3attempts").
func callShapes() []callShape {
	return []callShape{
		{"1attempt", 1, func() http.RoundTripper { return cannedRT{200} }, nil},
		{"3attempts", 3, func() http.RoundTripper { return &scriptRT{n: 3} },
			[]resilient.Option{resilient.WithBackoff(0, 0), resilient.WithoutRetryBudget(), resilient.WithoutBreaker()}},
	}
}

// BenchmarkInstrumentNoop measures what Instrument adds to an attempt with
// no-op providers (the budget: 2 µs and 10 allocations per attempt), side
// by side with the same Transport uninstrumented: calls of one attempt
// ("1attempt"), and calls of three attempts, two of them retried past a
// 503 without waiting ("3attempts"; divide by 3 for one attempt). The
// "parent" runs propagate a caller's span context, which a no-op tracer
// must still inject. The "globals" runs use a zero Config: the global
// providers, which record nothing while no SDK was installed (run them
// alone, -run '^$': a test of the package installs one).
func BenchmarkInstrumentNoop(b *testing.B) {
	ctx := context.Background()
	for _, shape := range callShapes() {
		for _, inst := range []struct {
			name string
			opt  resilient.Option
			ctx  context.Context
		}{
			{"bare", nil, ctx},
			{"noop", Instrument(noopConfig()), ctx},
			{"noop-parent", Instrument(noopConfig()), remoteParent(ctx)},
			{"globals", Instrument(Config{}), ctx},
			{"globals-parent", Instrument(Config{}), remoteParent(ctx)},
		} {
			b.Run(shape.name+"/"+inst.name, func(b *testing.B) {
				tr := resilient.New(shape.base(), append(shape.opts, inst.opt)...)
				req, err := http.NewRequestWithContext(inst.ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					resp, err := tr.RoundTrip(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatal(resp, err)
					}
				}
			})
		}
	}
}

// BenchmarkInstrumentNoopSideBySide measures the same as
// BenchmarkInstrumentNoop, the uninstrumented Transport and the
// instrumented one called in turn in each iteration, each call timed, so
// that a machine whose speed drifts slows both alike. It reports the time
// and allocations Instrument adds per attempt; the "otelhttp-base" runs
// report, for reference, what otelhttp adds as the Transport's base on the
// same no-op providers (one unnumbered span per attempt). The "globals"
// runs use a zero Config, the global providers with no SDK installed (run
// them alone, as BenchmarkInstrumentNoop's).
func BenchmarkInstrumentNoopSideBySide(b *testing.B) {
	for _, shape := range callShapes() {
		for _, v := range []struct{ parent, otelBase, globals bool }{
			{false, false, false}, {true, false, false}, {false, true, false}, {true, true, false},
			{false, false, true}, {true, false, true},
		} {
			parent, otelBase := v.parent, v.otelBase
			name := shape.name
			ctx := context.Background()
			if parent {
				name += "/parent"
				ctx = remoteParent(ctx)
			}
			if otelBase {
				name += "/otelhttp-base"
			}
			cfg := noopConfig()
			if v.globals {
				name += "/globals"
				cfg = Config{}
			}
			b.Run(name, func(b *testing.B) {
				bare := resilient.New(shape.base(), shape.opts...)
				inst := resilient.New(shape.base(), append(shape.opts, Instrument(cfg))...)
				if otelBase {
					// For reference: otelhttp as the base, on the same
					// no-op providers.
					cfg := noopConfig()
					inst = resilient.New(otelhttp.NewTransport(shape.base(), otelhttp.WithTracerProvider(cfg.TracerProvider),
						otelhttp.WithMeterProvider(cfg.MeterProvider), otelhttp.WithPropagators(cfg.Propagator)), shape.opts...)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
				if err != nil {
					b.Fatal(err)
				}
				call := func(rt http.RoundTripper) {
					resp, err := rt.RoundTrip(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatal(resp, err)
					}
				}
				allocs := testing.AllocsPerRun(1000, func() { call(inst) }) - testing.AllocsPerRun(1000, func() { call(bare) })
				var tBare, tInst time.Duration
				n := 0
				for b.Loop() {
					t0 := time.Now()
					call(bare)
					t1 := time.Now()
					call(inst)
					tInst += time.Since(t1)
					tBare += t1.Sub(t0)
					n++
				}
				per := float64(n * shape.attempts)
				b.ReportMetric(float64(tBare)/per, "bare-ns/attempt")
				b.ReportMetric(float64(tInst-tBare)/per, "added-ns/attempt")
				b.ReportMetric(allocs/float64(shape.attempts), "added-allocs/attempt")
			})
		}
	}
}

// BenchmarkInstrumentSDK measures an attempt recorded by the SDK, for
// reference: spans to a recorder that is reset, metrics to a manual reader.
func BenchmarkInstrumentSDK(b *testing.B) {
	tel := newTelemetry()
	tr := resilient.New(cannedRT{200}, Instrument(tel.config()))
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(resp, err)
		}
		if n++; n%1024 == 0 {
			tel.spans.Reset()
		}
	}
}
