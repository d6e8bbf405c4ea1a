package resilientotel

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// freshProcessEnv names the test that a new process of the test binary
// runs (see inFreshProcess).
const freshProcessEnv = "RESILIENTOTEL_FRESH_PROCESS"

// inFreshProcess reports whether the test runs in a process of its own,
// where the global providers are still the ones OpenTelemetry starts with:
// they delegate to the first providers set, once per process, and another
// test sets them. Otherwise it runs the test in a new process of the test
// binary, fails when it fails there, and returns false.
func inFreshProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(freshProcessEnv) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), freshProcessEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) &&
		!strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Fatalf("%s in a process of its own: %v\n%s", t.Name(), err, out)
	}
	return false
}

// getRequest returns a GET of a URL of the benchmarks, with ctx.
func getRequest(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestGlobalProvidersInstalledLater: a Transport instrumented with a zero
// Config before any SDK is installed records nothing, and its calls record
// spans and metrics as soon as the program installs the providers, without
// a new Transport.
func TestGlobalProvidersInstalledLater(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	base := &stub{steps: []step{{status: 200}, {status: 503}, {status: 200}}}
	client := &http.Client{Transport: resilient.New(base, Instrument(Config{}), resilient.WithBackoff(0, 0))}
	req, _ := http.NewRequest("GET", "http://api.test/v1/posts", nil)
	do(t, client, req) // no SDK: nothing to record

	tel := newTelemetry()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if status, err := do(t, client, req); status != 200 || err != nil {
		t.Fatalf("call after the SDK was installed: %d, %v", status, err)
	}
	internal, client2 := tel.ended(int(trace.SpanKindInternal)), tel.ended(int(trace.SpanKindClient))
	if len(internal) != 1 || len(client2) != 2 {
		t.Fatalf("%d INTERNAL and %d CLIENT spans, want 1 and 2", len(internal), len(client2))
	}
	// The first call after the SDK was installed started its span as
	// the idle calls do, without attributes: it has them all the same.
	got := attrs(internal[0].Attributes())
	for k, v := range map[string]string{"http.request.method": "GET", "server.address": "api.test",
		"server.port": "80", "url.full": "http://api.test/v1/posts", "resilient.attempts": "2"} {
		if got[k] != v {
			t.Errorf("INTERNAL span: %s = %q, want %q", k, got[k], v)
		}
	}
	for i, s := range client2 {
		if got := attrs(s.Attributes()); got["url.full"] != "http://api.test/v1/posts" || got["http.request.resend_count"] != [2]string{"", "1"}[i] {
			t.Errorf("CLIENT span %d: attributes %v", i, got)
		}
		if s.Parent().SpanID() != internal[0].SpanContext().SpanID() {
			t.Errorf("CLIENT span %d: parent %v, want the INTERNAL span", i, s.Parent().SpanID())
		}
		if want := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"; base.sent("Traceparent")[i+1] != want {
			t.Errorf("request %d: traceparent %q, want %q", i+2, base.sent("Traceparent")[i+1], want)
		}
	}
	if tp := base.sent("Traceparent")[0]; tp != "" {
		t.Errorf("request 1, before the SDK: traceparent %q, want none", tp)
	}
	ms := tel.metrics(t)
	wantOneRetriedCall(t, ms)
}

// TestGlobalMeterInstalledLater: with the global tracer still recording
// nothing, a meter provider installed later gets the metrics of the calls
// that follow; and before it, the calls propagate the caller's span
// context with the global propagator, as the global tracer's spans would.
func TestGlobalMeterInstalledLater(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	otel.SetTextMapPropagator(propagation.TraceContext{})
	base := &stub{steps: []step{{status: 200}, {status: 503}, {status: 200}}}
	client := &http.Client{Transport: resilient.New(base, Instrument(Config{}), resilient.WithBackoff(0, 0))}
	req, _ := http.NewRequestWithContext(remoteParent(t.Context()), "GET", "http://api.test/v1/posts", nil)
	do(t, client, req)
	const parent = "00-a1000000000000000000000000000000-b200000000000000-01"
	if tp := base.sent("Traceparent"); len(tp) != 1 || tp[0] != parent {
		t.Errorf("traceparent %q, want the caller's, %q", tp, parent)
	}

	tel := newTelemetry()
	otel.SetMeterProvider(tel.mp)
	if status, err := do(t, client, req); status != 200 || err != nil {
		t.Fatalf("call after the meter provider was installed: %d, %v", status, err)
	}
	ms := tel.metrics(t)
	wantOneRetriedCall(t, ms)
	if tp := base.sent("Traceparent"); len(tp) != 3 || tp[1] != parent || tp[2] != parent {
		t.Errorf("traceparent %q, want the caller's on every request", tp)
	}
}

// TestIdleCallStaysUnrecorded: a call that started idle, before the SDK
// was installed, stays unrecorded when the SDK comes during it and another
// call starts recording: its retry gets no CLIENT span (it would be the
// root of a trace of its own, a resend without the request it resends)
// and no measurement.
func TestIdleCallStaysUnrecorded(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	entered, gate := make(chan struct{}), make(chan struct{})
	var sent atomic.Int32
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		status := http.StatusOK
		if sent.Add(1) == 1 { // the idle call's first attempt, held while the SDK comes
			close(entered)
			<-gate
			status = http.StatusServiceUnavailable
		}
		return &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	client := &http.Client{Transport: resilient.New(base, Instrument(Config{}), resilient.WithBackoff(0, 0))}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", "http://idle.test/", nil)
		if status, err := do(t, client, req); status != 200 || err != nil {
			t.Errorf("idle call: %d, %v; want the retry's 200", status, err)
		}
	}()
	<-entered
	tel := newTelemetry()
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	req, _ := http.NewRequest("GET", "http://recorded.test/", nil)
	if status, err := do(t, client, req); status != 200 || err != nil {
		t.Fatalf("call after the SDK was installed: %d, %v", status, err)
	}
	close(gate)
	<-done
	for _, s := range tel.ended() {
		if a := attrs(s.Attributes()); a["server.address"] != "recorded.test" {
			t.Errorf("%v span %q of the idle call: %v", s.SpanKind(), s.Name(), a)
		}
	}
	ms := tel.metrics(t)
	for set := range histogramPoints(t, ms["http.client.request.duration"]) {
		if !strings.Contains(set, "server.address=recorded.test") {
			t.Errorf("http.client.request.duration of the idle call: %s", set)
		}
	}
}

// TestGlobalProvidersIdleAllocs pins what a zero Config costs while no SDK
// is installed, the common case of a program with the instrumentation and
// tracing off: 4 allocations per call, whatever its attempts (the budget:
// 10 per attempt). The global tracer's span costs 3 (it is started all the
// same, for the SDK installed later and for eBPF auto-instrumentation,
// which hooks it), the Transport's Report 1; the call's state and the
// span's attributes, none once a call found that nothing records, nor its
// attempts.
func TestGlobalProvidersIdleAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	if !inFreshProcess(t) {
		return
	}
	for _, tc := range callShapes() {
		for _, ctx := range []struct {
			name string
			req  *http.Request
		}{
			{"", getRequest(t, t.Context())},
			{"/parent", getRequest(t, remoteParent(t.Context()))},
		} {
			bare := resilient.New(tc.base(), tc.opts...)
			inst := resilient.New(tc.base(), append(tc.opts, Instrument(Config{}))...)
			call := func(rt http.RoundTripper) {
				resp, err := rt.RoundTrip(ctx.req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatal(resp, err)
				}
			}
			call(inst) // the pools
			n := testing.AllocsPerRun(1000, func() { call(inst) }) - testing.AllocsPerRun(1000, func() { call(bare) })
			if n > 4 {
				t.Errorf("%s%s: a call allocates %v times beyond the bare Transport's, want 4 at most", tc.name, ctx.name, n)
			}
		}
	}
}

// wantOneRetriedCall checks the metrics ms of one call of two attempts,
// the first retried past: two attempt durations, one call duration, one
// retry.
func wantOneRetriedCall(t *testing.T, ms map[string]metricdata.Metrics) {
	t.Helper()
	if n, _ := total(t, ms, "http.client.request.duration"); n != 2 {
		t.Errorf("http.client.request.duration count %v, want 2", n)
	}
	if n, _ := total(t, ms, MetricCallDuration); n != 1 {
		t.Errorf("%s count %v, want 1", MetricCallDuration, n)
	}
	if n, sum := total(t, ms, MetricCallRetries); n != 1 || sum != 1 {
		t.Errorf("%s count %v sum %v, want 1 and 1", MetricCallRetries, n, sum)
	}
}
