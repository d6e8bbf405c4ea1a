package resilientotel

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilienthttp/resilient/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// telemetry is an SDK tracer and meter recording in memory.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry() *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	return tel
}

// config returns a Config on tel's providers, with the W3C propagator.
func (tel *telemetry) config() Config {
	return Config{TracerProvider: tel.tp, MeterProvider: tel.mp, Propagator: propagation.TraceContext{}}
}

// metrics collects the metrics recorded so far, by name.
func (tel *telemetry) metrics(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// ended returns the ended spans of the instrumentation, of kind when given.
func (tel *telemetry) ended(kinds ...int) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.InstrumentationScope().Name != ScopeName {
			continue // the test's own
		}
		if len(kinds) == 0 || int(s.SpanKind()) == kinds[0] {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns kvs as a map of their values' string forms.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// wantAttrs fails unless got holds exactly want; a value "*" stands for any.
func wantAttrs(t testing.TB, what string, got []attribute.KeyValue, want map[string]string) {
	t.Helper()
	g := attrs(got)
	for k, v := range want {
		gv, ok := g[k]
		if !ok {
			t.Errorf("%s: no %s, want %q (attributes %v)", what, k, v, g)
		} else if v != "*" && gv != v {
			t.Errorf("%s: %s = %q, want %q", what, k, gv, v)
		}
	}
	for k, v := range g {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected attribute %s = %q", what, k, v)
		}
	}
}

// histogramPoints returns the data points of a histogram, of any number
// type, as count and sum per attribute set (in its encoded form).
func histogramPoints(t testing.TB, m metricdata.Metrics) map[string][2]float64 {
	t.Helper()
	out := make(map[string][2]float64)
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(attribute.DefaultEncoder())] = [2]float64{float64(p.Count), p.Sum}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(attribute.DefaultEncoder())] = [2]float64{float64(p.Count), float64(p.Sum)}
		}
	default:
		t.Fatalf("%s is a %T, not a histogram", m.Name, m.Data)
	}
	return out
}

// attributeSets returns the attribute sets of the data points of m, a
// histogram, counter or gauge of any number type.
func attributeSets(m metricdata.Metrics) []attribute.Set {
	var sets []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	return sets
}

// sumPoints returns the values of a counter or gauge per attribute set.
func sumPoints(t testing.TB, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
		}
	default:
		t.Fatalf("%s is a %T, not a sum or gauge", m.Name, m.Data)
	}
	return out
}

// total adds up the counts (histograms) or values (sums) of a metric; 0
// when it was never recorded.
func total(t testing.TB, ms map[string]metricdata.Metrics, name string) (count, sum float64) {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return 0, 0
	}
	if _, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, v := range sumPoints(t, m) {
			count += float64(v)
		}
		return count, count
	}
	for _, p := range histogramPoints(t, m) {
		count += p[0]
		sum += p[1]
	}
	return count, sum
}

// step is one scripted answer of a stub.
type step struct {
	status   int
	header   http.Header
	err      error
	location string // a Location header
}

// stub is an in-memory RoundTripper answering with its steps in order,
// repeating the last, recording the headers of each request it gets. Like
// http.Transport, it sets the response's Request to the request it got.
type stub struct {
	steps []step

	mu      sync.Mutex
	headers []http.Header
	urls    []string
}

func (s *stub) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	i := len(s.headers)
	s.headers = append(s.headers, req.Header.Clone())
	s.urls = append(s.urls, req.URL.String())
	s.mu.Unlock()
	st := s.steps[min(i, len(s.steps)-1)]
	if st.err != nil {
		return nil, st.err
	}
	h := st.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if st.location != "" {
		h.Set("Location", st.location)
	}
	status := st.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader("{}")), ContentLength: 2, Request: req,
	}, nil
}

// sent returns the value of header name in each request the stub got.
func (s *stub) sent(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, h := range s.headers {
		out = append(out, h.Get(name))
	}
	return out
}

// do sends a request through client and returns its status, or the error.
func do(t testing.TB, client *http.Client, req *http.Request) (int, error) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// eventNames returns the names of events, with their kind attribute if any.
func eventNames(evs []sdktrace.Event) []string {
	var out []string
	for _, e := range evs {
		name := e.Name
		if k, ok := attrs(e.Attributes)[string(AttrWaitKind)]; ok {
			name += ":" + k
		}
		out = append(out, name)
	}
	return out
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// remoteParent returns ctx with a sampled remote span context, as a server
// instrumentation leaves it for the calls of a request it serves.
func remoteParent(ctx context.Context) context.Context {
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa1}, SpanID: trace.SpanID{0xb2}, TraceFlags: trace.FlagsSampled,
	}))
}
