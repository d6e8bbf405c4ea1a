package resilientotel

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/resilienthttp/resilient/resilientotel"

// KnownMethodsEnv is the environment variable the conventions name for the
// list of known HTTP methods: a comma-separated list that replaces the
// default one, read by Instrument when Config.KnownMethods is nil. An empty
// or blank value is as if it were unset, as OpenTelemetry's environment
// variables are.
const KnownMethodsEnv = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"

// Config configures Instrument. Its zero value uses the global providers
// and propagator (otel.GetTracerProvider, otel.GetMeterProvider,
// otel.GetTextMapPropagator) as Instrument finds them: one set by then is
// used as it is; before one is set, the global delegate Instrument gets
// follows the first call of its setter, not later ones, as otelhttp's
// instrumentation does.
type Config struct {
	// TracerProvider makes the spans; nil means the global one.
	TracerProvider trace.TracerProvider

	// MeterProvider makes the instruments; nil means the global one.
	MeterProvider metric.MeterProvider

	// Propagator injects each attempt's span context into the headers it
	// sends; nil means the global one (which injects nothing until one is
	// set, such as propagation.TraceContext{}).
	Propagator propagation.TextMapPropagator

	// URLTemplate, when set, returns the low-cardinality template of a
	// request's URL, such as "/v1/posts/{id}", or "" when it has none.
	// It becomes url.template and names the CLIENT spans "{method}
	// {url.template}", cut at 8 KiB and made valid UTF-8. It runs once
	// per call and must be safe for concurrent use.
	URLTemplate func(*http.Request) string

	// KnownMethods, when not nil, replaces the methods known to the
	// instrumentation (by default the methods of RFC 9110, PATCH and
	// QUERY); a method not known is recorded as _OTHER. Names are
	// case-sensitive.
	// When nil, the environment variable named by KnownMethodsEnv, when
	// set and not blank, replaces them.
	KnownMethods []string
}

// Instrument returns an Option that makes a Transport report its calls to
// OpenTelemetry: spans, metrics and the propagation of each attempt's span
// context (see the package documentation). It sets the Transport's Tracer
// (resilient.WithTracer: a later WithTracer replaces it) and adds a breaker
// observer. Give it to resilient.New once per Transport; it cannot be given
// to resilient.WithCallOptions.
func Instrument(cfg Config) resilient.Option {
	in := newInstrumentation(cfg)
	return resilient.Options(resilient.WithTracer(in), resilient.WithBreakerObserver(in.breakerChanged))
}

// methodNames are the names of one known method.
type methodNames struct {
	attr   string // http.request.method
	client string // the CLIENT span's name without a template
	call   string // the INTERNAL span's name
}

// instrumentation is the resilient.Tracer of Instrument.
type instrumentation struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	template func(*http.Request) string
	methods  map[string]methodNames // known methods; immutable
	other    methodNames            // a method not known
	m        instruments

	// The span kinds as options, made once: an option made per span
	// would cost an allocation. internal is the only option of the
	// INTERNAL spans started while the calls are idle (see StartCall).
	internal [1]trace.SpanStartOption
	client   trace.SpanStartOption

	// passthrough: the providers are the no-op ones, which record
	// nothing; only the propagation of the caller's span context is left
	// to do, with carriers from the pool.
	passthrough bool
	carriers    sync.Pool

	// idle: the last call started recorded nothing (see idleCall).
	idle atomic.Bool
}

func newInstrumentation(cfg Config) *instrumentation {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	in := &instrumentation{
		tracer:   tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:     prop,
		template: cfg.URLTemplate,
		methods:  make(map[string]methodNames),
		other:    methodNames{attr: "_OTHER", client: "HTTP", call: "resilient HTTP"},
		internal: [1]trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)},
		client:   trace.WithSpanKind(trace.SpanKindClient),
	}
	known := cfg.KnownMethods
	if known == nil {
		known = strings.Split(defaultMethods, ",")
		if env := os.Getenv(KnownMethodsEnv); strings.TrimSpace(env) != "" {
			known = strings.Split(env, ",")
		}
	}
	for _, m := range known {
		if m = strings.TrimSpace(m); m != "" {
			in.methods[m] = methodNames{attr: m, client: m, call: "resilient " + m}
		}
	}
	in.m = newInstruments(mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL)))
	_, noopTracer := in.tracer.(tracenoop.Tracer)
	_, noopMeter := mp.(metricnoop.MeterProvider)
	in.passthrough = noopTracer && noopMeter
	in.carriers.New = func() any { return new(headerCarrier) }
	return in
}

// defaultMethods are the methods of RFC 9110, PATCH (RFC 5789) and QUERY
// (RFC 10008): the known methods of the conventions this package follows
// (semconv.SchemaURL, which lists QUERY since v1.38.0).
const defaultMethods = "CONNECT,DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT,QUERY,TRACE"

// method returns the names of method, and the original method when it is
// not known ("" otherwise), cut at maxMethodLen, in valid UTF-8 (see
// boundedUTF8). An empty method is GET,
// as in net/http.
func (in *instrumentation) method(method string) (methodNames, string) {
	if method == "" {
		method = http.MethodGet
	}
	if n, ok := in.methods[method]; ok {
		return n, ""
	}
	return in.other, boundedUTF8(method, maxMethodLen)
}
