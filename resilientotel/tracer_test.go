package resilientotel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TestSpansOfARetriedCall: a call retried once after a 503 with
// Retry-After gives one INTERNAL span and, inside it, one CLIENT span per
// attempt, attributed as the conventions say, each attempt sending its own
// span's context; the metrics agree, under the names, units and bucket
// boundaries documented, all in the scope of the conventions' schema.
func TestSpansOfARetriedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 503, header: http.Header{"Retry-After": {"1"}}}, {status: 200}}}
		tr := resilient.New(base, Instrument(tel.config()))
		client := &http.Client{Transport: tr}

		parentCtx, parent := tel.tp.Tracer("test").Start(context.Background(), "caller")
		var rep resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(parentCtx, &rep), "GET", "https://user:pw@API.test/v1/posts?token=x#frag", nil)
		if code, err := do(t, client, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		parent.End()
		if req.Header.Get("Traceparent") != "" {
			t.Error("the caller's request was modified")
		}

		calls, clients := tel.ended(int(trace.SpanKindInternal)), tel.ended(int(trace.SpanKindClient))
		if len(calls) != 1 || len(clients) != 2 {
			t.Fatalf("%d INTERNAL and %d CLIENT spans, want 1 and 2", len(calls), len(clients))
		}
		call := calls[0]
		if call.Name() != "resilient GET" || call.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("call span %q, parent %v; want \"resilient GET\" under the caller's span", call.Name(), call.Parent().SpanID())
		}
		common := map[string]string{
			"http.request.method": "GET", "server.address": "API.test", "server.port": "443",
			"url.full": "https://REDACTED:REDACTED@API.test/v1/posts",
		}
		with := func(m map[string]string, kv ...string) map[string]string {
			out := map[string]string{}
			for k, v := range common {
				out[k] = v
			}
			for i := 0; i < len(kv); i += 2 {
				out[kv[i]] = kv[i+1]
			}
			return out
		}
		wantAttrs(t, "attempt 1", clients[0].Attributes(), with(common,
			"http.response.status_code", "503", "error.type", "503", "network.protocol.version", "1.1"))
		wantAttrs(t, "attempt 2", clients[1].Attributes(), with(common,
			"http.response.status_code", "200", "network.protocol.version", "1.1", "http.request.resend_count", "1"))
		wantAttrs(t, "call", call.Attributes(), with(common,
			"http.response.status_code", "200", "resilient.attempts", "2", "resilient.hedges", "0",
			"resilient.outcome", "success", "resilient.wait.duration", "*"))
		if s := clients[0].Status(); s.Code != codes.Error || s.Description != "" {
			t.Errorf("attempt 1 status %v, want Error without description (the status code says it)", s)
		}
		if s := clients[1].Status(); s.Code != codes.Unset {
			t.Errorf("attempt 2 status %v, want Unset", s)
		}
		for i, s := range clients {
			if s.Name() != "GET" || s.Parent().SpanID() != call.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("attempt %d: %q under %v, want \"GET\" under the call span, in the caller's trace", i+1, s.Name(), s.Parent().SpanID())
			}
			want := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"
			if got := base.sent("Traceparent")[i]; got != want {
				t.Errorf("attempt %d sent traceparent %q, want its own span's %q", i+1, got, want)
			}
			if !s.EndTime().Equal(s.StartTime()) {
				t.Errorf("attempt %d lasted %v in a bubble with an instant base", i+1, s.EndTime().Sub(s.StartTime()))
			}
		}
		evs := call.Events()
		if got := strings.Join(eventNames(evs), ","); got != "resilient.wait:retry_after" {
			t.Fatalf("call events %s, want one retry_after wait", got)
		}
		wait := attrs(evs[0].Attributes)
		if wait["resilient.attempt.number"] != "2" || wait["resilient.wait.duration"] != attrs(call.Attributes())["resilient.wait.duration"] {
			t.Errorf("wait event %v, want attempt 2 and the call's whole wait", wait)
		}
		if rep.Waited < time.Second || evs[0].Time != clients[0].EndTime() || !clients[1].StartTime().Equal(evs[0].Time.Add(rep.Waited)) {
			t.Errorf("waited %v from %v, attempt 2 at %v; want ≥ 1s, from the end of attempt 1 to the start of attempt 2",
				rep.Waited, evs[0].Time, clients[1].StartTime())
		}

		ms := tel.metrics(t)
		if n, _ := total(t, ms, "http.client.request.duration"); n != 2 {
			t.Errorf("http.client.request.duration count %v, want 2", n)
		}
		if n, sum := total(t, ms, MetricCallRetries); n != 1 || sum != 1 {
			t.Errorf("retries: %v calls, %v retries; want 1 and 1", n, sum)
		}
		if n, sum := total(t, ms, MetricCallWait); n != 1 || sum != rep.Waited.Seconds() {
			t.Errorf("call wait: %v calls, %vs; want 1 and %v", n, sum, rep.Waited.Seconds())
		}
		if n, _ := total(t, ms, MetricCallDuration); n != 1 {
			t.Errorf("call duration count %v, want 1", n)
		}
		for _, p := range sortedKeys(histogramPoints(t, ms["http.client.request.duration"])) {
			if !strings.Contains(p, "server.address=API.test") || strings.Contains(p, "url.full") {
				t.Errorf("duration point %s: want server.address and no url.full", p)
			}
		}
		// The call's histograms under the names and units the package
		// documents, with their bucket boundaries: dashboards and alerts
		// are built on them.
		callBounds := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300}
		waitBounds := []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
		for _, want := range []struct {
			name, unit string
			bounds     []float64
		}{
			{"resilient.client.call.duration", "s", callBounds},
			{"resilient.client.call.retries", "{retry}", []float64{1, 2, 3, 4, 5, 10}},
			{"resilient.client.call.wait.duration", "s", waitBounds},
		} {
			m, ok := ms[want.name]
			if !ok {
				t.Errorf("no metric %s (metrics %v)", want.name, sortedKeys(ms))
				continue
			}
			var bounds []float64
			switch h := m.Data.(type) {
			case metricdata.Histogram[float64]:
				bounds = h.DataPoints[0].Bounds
			case metricdata.Histogram[int64]:
				bounds = h.DataPoints[0].Bounds
			}
			if m.Unit != want.unit || !slices.Equal(bounds, want.bounds) {
				t.Errorf("%s: unit %q, bounds %v; want %q, %v", want.name, m.Unit, bounds, want.unit, want.bounds)
			}
		}
		// The instrumentation scope names the conventions' schema, for
		// the spans and the metrics alike: a collector translates the
		// attributes by it.
		for _, s := range tel.ended() {
			if sc := s.InstrumentationScope(); sc.Name != ScopeName || sc.SchemaURL != semconv.SchemaURL {
				t.Errorf("span %q: scope %q, schema %q; want %q, %q", s.Name(), sc.Name, sc.SchemaURL, ScopeName, semconv.SchemaURL)
			}
		}
		var rm metricdata.ResourceMetrics
		if err := tel.reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.Name != ScopeName || sm.Scope.SchemaURL != semconv.SchemaURL {
				t.Errorf("metrics scope %q, schema %q; want %q, %q", sm.Scope.Name, sm.Scope.SchemaURL, ScopeName, semconv.SchemaURL)
			}
		}
	})
}

// TestRedirectsCountResends: the request an http.Client sends after a
// redirect is a call of its own, whose CLIENT spans go on counting resends
// from the calls before it.
func TestRedirectsCountResends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 503}, {status: 302, location: "/b"}, {status: 307, location: "/c"}, {status: 200}}}
		client := &http.Client{Transport: resilient.New(base, Instrument(tel.config()))}
		req, _ := http.NewRequest("GET", "http://api.test/a", nil)
		if code, err := do(t, client, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		calls, clients := tel.ended(int(trace.SpanKindInternal)), tel.ended(int(trace.SpanKindClient))
		if len(calls) != 3 || len(clients) != 4 {
			t.Fatalf("%d calls, %d attempts; want 3 and 4", len(calls), len(clients))
		}
		for i, want := range []struct{ url, resend, call string }{
			{"http://api.test/a", "", "0"}, {"http://api.test/a", "1", "0"},
			{"http://api.test/b", "2", "1"}, {"http://api.test/c", "3", "2"},
		} {
			a := attrs(clients[i].Attributes())
			if a["url.full"] != want.url || a["http.request.resend_count"] != want.resend {
				t.Errorf("attempt %d: %s resend %q, want %s resend %q", i, a["url.full"], a["http.request.resend_count"], want.url, want.resend)
			}
			if clients[i].Parent().SpanID() != calls[int(want.call[0]-'0')].SpanContext().SpanID() {
				t.Errorf("attempt %d is not in call %s", i, want.call)
			}
		}
		// Each call stands for itself: attempts and outcome.
		for i, want := range []string{"2 success 302", "1 success 307", "1 success 200"} {
			a := attrs(calls[i].Attributes())
			if got := a["resilient.attempts"] + " " + a["resilient.outcome"] + " " + a["http.response.status_code"]; got != want {
				t.Errorf("call %d: %s, want %s", i, got, want)
			}
		}
	})
}

// TestErrorsAndRefusals: an attempt without a response has error.type and
// an Error status; refusals by the breaker, the rate limiter and the retry
// budget, and waits for the rate limiter, are events of the call's span and
// counted, and refused attempts have no CLIENT span; a call refused by the
// host's limit of attempts in flight has error.type too_many_in_flight.
func TestErrorsAndRefusals(t *testing.T) {
	t.Run("breaker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry()
			base := &stub{steps: []step{{err: errors.New("dial tcp: connection refused")}}}
			tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(2), resilient.WithoutRetryBudget(),
				resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 1}))
			req, _ := http.NewRequest("GET", "http://api.test/", nil)
			if _, err := do(t, &http.Client{Transport: tr}, req); !errors.Is(err, resilient.ErrCircuitOpen) {
				t.Fatalf("err %v, want the breaker's refusal", err)
			}
			clients := tel.ended(int(trace.SpanKindClient))
			if len(clients) != 1 || len(base.headers) != 1 {
				t.Fatalf("%d CLIENT spans for %d requests sent, want 1 and 1", len(clients), len(base.headers))
			}
			a := attrs(clients[0].Attributes())
			if a["error.type"] != "_OTHER" || clients[0].Status().Code != codes.Error || clients[0].Status().Description != "_OTHER" {
				t.Errorf("attempt: error.type %q, status %v; want _OTHER and Error", a["error.type"], clients[0].Status())
			}
			call := tel.ended(int(trace.SpanKindInternal))[0]
			if got := strings.Join(eventNames(call.Events()), ","); got != "resilient.circuit_open" { // no wait: the breaker would refuse the retry after it
				t.Errorf("events %s", got)
			}
			ca := attrs(call.Attributes())
			if ca["error.type"] != "circuit_open" || ca["resilient.attempts"] != "2" || ca["resilient.outcome"] != "circuit_open" || call.Status().Code != codes.Error {
				t.Errorf("call: %v, status %v", ca, call.Status())
			}
			ms := tel.metrics(t)
			if n, _ := total(t, ms, MetricBreakerRefusals); n != 1 {
				t.Errorf("breaker refusals %v, want 1", n)
			}
			if got := sumPoints(t, ms[MetricBreakerTransitions]); len(got) != 1 ||
				got["resilient.breaker.from=closed,resilient.breaker.key=http://api.test:80,resilient.breaker.to=open"] != 1 {
				t.Errorf("transitions %v, want closed->open once", got)
			}
			if got := sumPoints(t, ms[MetricBreakerState]); got["resilient.breaker.key=http://api.test:80"] != 2 {
				t.Errorf("state %v, want 2 (open)", got)
			}
			if st := tr.BreakerState("http://api.test/x"); st != resilient.BreakerOpen {
				t.Errorf("BreakerState %v, want open", st)
			}
		})
	})
	t.Run("rate limiter and budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry()
			base := &stub{steps: []step{
				// Quota spent, resets in 5s: the next attempt waits.
				{status: 200, header: http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"5"}}},
				{status: 500}, {status: 500}, // call 2: one retry, then the budget says no
				{status: 429, header: http.Header{"Retry-After": {"3600"}}}, // call 3: a pause too long
			}}
			var waits []time.Duration
			var attempts []resilient.Attempt
			tr := resilient.New(base, Instrument(tel.config()),
				resilient.WithRetryBudget(resilient.RetryBudget{Ratio: 0.01, Burst: 1}),
				resilient.WithObserver(func(a resilient.Attempt) {
					attempts = append(attempts, a)
					if a.LocalWait > 0 {
						waits = append(waits, a.LocalWait)
					}
				}))
			client := &http.Client{Transport: tr}
			get := func() (int, error) {
				req, _ := http.NewRequest("GET", "http://api.test/", nil)
				return do(t, client, req)
			}
			get()
			if code, err := get(); code != 500 || err != nil {
				t.Fatalf("call 2: %d, %v; want the 500 once the budget refused its second retry", code, err)
			}
			if code, _ := get(); code != 429 {
				t.Fatalf("call 3: %d, want 429", code)
			}
			if _, err := get(); !errors.Is(err, resilient.ErrRateLimited) {
				t.Fatalf("call 4: %v, want ErrRateLimited", err)
			}
			calls := tel.ended(int(trace.SpanKindInternal))
			if len(calls) != 4 || len(tel.ended(int(trace.SpanKindClient))) != len(base.headers) {
				t.Fatalf("%d calls, %d CLIENT spans for %d requests", len(calls), len(tel.ended(int(trace.SpanKindClient))), len(base.headers))
			}
			// Call 2's retry, and call 3, may wait for the pace the
			// quota announced, as the backoff's jitter falls: the
			// observer says (call 2's retry is the third attempt).
			retry := "resilient.wait:rate_limit,resilient.wait:backoff,"
			if len(attempts) > 2 && attempts[2].LocalWait > 0 {
				retry += "resilient.wait:rate_limit,"
			}
			for i, want := range []string{
				"",
				retry + "resilient.retry_budget_exhausted",
				"",
				"resilient.rate_limited",
			} {
				got := strings.Join(eventNames(calls[i].Events()), ",")
				if i == 2 {
					got = strings.TrimPrefix(got, "resilient.wait:rate_limit")
				}
				if got != want {
					t.Errorf("call %d events %q, want %q", i+1, got, want)
				}
			}
			ev := calls[1].Events()[0]
			if w := attrs(ev.Attributes); w["resilient.wait.duration"] != strconv.FormatFloat(waits[0].Seconds(), 'g', -1, 64) ||
				waits[0] < 5*time.Second || w["resilient.attempt.number"] != "1" || !ev.Time.Equal(calls[1].StartTime()) {
				t.Errorf("rate-limit wait %v at %v, want the observer's %v (the 5s reset and its jitter) for attempt 1, from the call's start %v",
					w, ev.Time, waits[0], calls[1].StartTime())
			}
			if a := attrs(calls[1].Attributes()); a["resilient.stop_reason"] != "retry_budget" || a["error.type"] != "500" {
				t.Errorf("call 2: %v", a)
			}
			if a := attrs(calls[2].Attributes()); a["resilient.stop_reason"] != "retry_after_too_long" || a["resilient.outcome"] != "throttled" {
				t.Errorf("call 3: %v", a)
			}
			if a := attrs(calls[3].Attributes()); a["error.type"] != "rate_limited_locally" || a["resilient.attempts"] != "1" {
				t.Errorf("call 4: %v", a)
			}
			ms := tel.metrics(t)
			for name, want := range map[string]float64{
				MetricRateLimitRefusals: 1, MetricRetryBudgetRefusal: 1, MetricRateLimitWait: float64(len(waits)), MetricBreakerRefusals: 0,
				"http.client.request.duration": 4, MetricCallDuration: 4, MetricCallRetries: 1,
			} {
				if n, _ := total(t, ms, name); n != want {
					t.Errorf("%s: %v, want %v", name, n, want)
				}
			}
			var sum time.Duration
			for _, w := range waits {
				sum += w
			}
			if _, got := total(t, ms, MetricRateLimitWait); math.Abs(got-sum.Seconds()) > 1e-9 {
				t.Errorf("rate-limit waits %vs, want the observer's %v", got, sum)
			}
		})
	})
	t.Run("bulkhead", func(t *testing.T) {
		// A call refused by the host's limit of attempts in flight: no
		// CLIENT span, and error.type names the refusal, as the
		// breaker's and the rate limiter's do (it was _OTHER).
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry()
			release := make(chan struct{})
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-release
				return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
			})
			tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxInFlight(1))
			client := &http.Client{Transport: tr}
			var holder sync.WaitGroup
			holder.Go(func() {
				req, _ := http.NewRequest("GET", "http://api.test/hold", nil)
				do(t, client, req)
			})
			synctest.Wait()
			ctx := resilient.WithCallOptions(context.Background(), resilient.WithAttemptTimeout(time.Second))
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/late", nil)
			_, err := do(t, client, req)
			close(release)
			holder.Wait()
			if !errors.Is(err, resilient.ErrTooManyInFlight) {
				t.Fatalf("err %v, want the bulkhead's refusal", err)
			}
			if n := len(tel.ended(int(trace.SpanKindClient))); n != 1 {
				t.Errorf("%d CLIENT spans, want 1: the refused attempt was not sent", n)
			}
			var late sdktrace.ReadOnlySpan
			for _, s := range tel.ended(int(trace.SpanKindInternal)) {
				if attrs(s.Attributes())["url.full"] == "http://api.test/late" {
					late = s
				}
			}
			if late == nil {
				t.Fatal("no INTERNAL span for the refused call")
			}
			a := attrs(late.Attributes())
			if a["error.type"] != "too_many_in_flight" || a["resilient.outcome"] != "too_many_in_flight" ||
				late.Status().Code != codes.Error || late.Status().Description != "too_many_in_flight" {
				t.Errorf("refused call: %v, status %v; want error.type and outcome too_many_in_flight, Error", a, late.Status())
			}
			ms := tel.metrics(t)
			want := "error.type=too_many_in_flight,http.request.method=GET,resilient.outcome=too_many_in_flight,server.address=api.test,server.port=80"
			if p := histogramPoints(t, ms[MetricCallDuration]); p[want][0] != 1 {
				t.Errorf("%s: %v, want one call with %s", MetricCallDuration, sortedKeys(p), want)
			}
			if n, _ := total(t, ms, MetricInFlightRefusals); n != 1 {
				t.Errorf("%s: %v, want 1", MetricInFlightRefusals, n)
			}
			if n, _ := total(t, ms, MetricBreakerRefusals); n != 0 {
				t.Errorf("%s: %v, want 0", MetricBreakerRefusals, n)
			}
			events := 0
			for _, e := range late.Events() {
				if e.Name == EventTooManyInFlight {
					events++
				}
			}
			if events != 1 {
				t.Errorf("%d %s events on the refused call's span, want 1", events, EventTooManyInFlight)
			}
		})
	})
	t.Run("timeout and cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry()
			hang := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-req.Context().Done()
				return nil, req.Context().Err()
			})
			tr := resilient.New(hang, Instrument(tel.config()), resilient.WithMaxRetries(1), resilient.WithAttemptTimeout(time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
			if _, err := do(t, &http.Client{Transport: tr}, req); !errors.Is(err, resilient.ErrAttemptTimeout) {
				t.Fatalf("err %v, want an attempt timeout", err)
			}
			for _, s := range tel.ended() {
				if a := attrs(s.Attributes()); a["error.type"] != "timeout" || s.Status().Description != "timeout" {
					t.Errorf("%s: error.type %q, status %v; want timeout", s.Name(), a["error.type"], s.Status())
				}
			}
			tel.spans.Reset()
			ctx, cancel = context.WithCancel(context.Background())
			req, _ = http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
			go func() { time.Sleep(100 * time.Millisecond); cancel() }()
			if _, err := do(t, &http.Client{Transport: tr}, req); !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want canceled", err)
			}
			for _, s := range tel.ended() {
				if a := attrs(s.Attributes()); a["error.type"] != "canceled" {
					t.Errorf("%s: error.type %q, want canceled", s.Name(), a["error.type"])
				}
			}
		})
	})
}

// TestPanicEndsCallSpan: a panic of the base RoundTripper that goes
// through the Transport ends the call's INTERNAL span, with error.type
// _OTHER (not the error of an attempt before it) and an Error status, and
// records the call's duration, before the panic reaches the caller. (The
// span was never ended, and never exported.)
func TestPanicEndsCallSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		n := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if n++; n == 1 {
				return nil, fmt.Errorf("read tcp: %w", syscall.ECONNRESET)
			}
			panic("base exploded")
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithBackoff(time.Second, time.Second))
		func() {
			defer func() {
				if p := recover(); p != "base exploded" {
					t.Errorf("recovered %v, want the base's panic", p)
				}
			}()
			req, _ := http.NewRequest("GET", "http://api.test/", nil)
			tr.RoundTrip(req)
		}()
		if clients := tel.ended(int(trace.SpanKindClient)); len(clients) != 2 {
			t.Errorf("%d CLIENT spans ended, want 2", len(clients))
		}
		calls := tel.ended(int(trace.SpanKindInternal))
		if len(calls) != 1 {
			t.Fatalf("%d INTERNAL spans ended, want 1", len(calls))
		}
		a := attrs(calls[0].Attributes())
		if a["error.type"] != "_OTHER" || a["resilient.attempts"] != "2" || calls[0].Status().Code != codes.Error || calls[0].Status().Description != "_OTHER" {
			t.Errorf("call: %v, status %v; want error.type _OTHER, 2 attempts, Error", a, calls[0].Status())
		}
		if _, ok := a["resilient.outcome"]; ok {
			t.Errorf("call: resilient.outcome %q, want none: no attempt's result was returned", a["resilient.outcome"])
		}
		if n, _ := total(t, tel.metrics(t), MetricCallDuration); n != 1 {
			t.Errorf("%s: %v calls recorded, want 1", MetricCallDuration, n)
		}
	})
}

// TestNestedTransportKeepsItsCall: a Transport instrumented with the no-op
// providers, used as the base of an instrumented one (or by a base that
// sends its own calls with the attempt's context), makes no call of its
// own, and its Attempt and EndCall find the outer call in their context:
// they must leave it alone. (The inner Transport's EndCall ended the outer
// call's span after its first attempt, with the inner call's report: one
// attempt and a 503 on a call that went on to a 200.)
func TestNestedTransportKeepsItsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 503}, {status: 200}}}
		inner := resilient.New(base, resilient.WithMaxRetries(0),
			Instrument(Config{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}))
		outer := resilient.New(inner, Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "https://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: outer}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		calls := tel.ended(int(trace.SpanKindInternal))
		if len(calls) != 1 {
			t.Fatalf("%d INTERNAL spans, want 1", len(calls))
		}
		a := attrs(calls[0].Attributes())
		if a["resilient.attempts"] != "2" || a["http.response.status_code"] != "200" || a["error.type"] != "" || calls[0].Status().Code != codes.Unset {
			t.Errorf("outer call: %v, status %v; want 2 attempts and the 200, no error", a, calls[0].Status())
		}
		if got := strings.Join(eventNames(calls[0].Events()), ","); got != "resilient.wait:backoff" {
			t.Errorf("outer call events %s, want its backoff", got)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// cutBody yields "{" and then fails as a connection that broke.
type cutBody struct{ read bool }

func (b *cutBody) Read(p []byte) (int, error) {
	if b.read {
		return 0, io.ErrUnexpectedEOF
	}
	b.read = true
	return copy(p, "{"), nil
}

func (b *cutBody) Close() error { return nil }

// TestBufferedResponseSpans: with resilient.WithBufferedResponse, the
// CLIENT span of an attempt whose success's body broke on its way ends
// once the Transport failed to read it, with its status code and the
// read's error.type, connection_closed, as its duration point: the status
// code was received all the same ("Conditionally Required: if and only if
// one was received"), and the span's Error status is described by the
// error.type, which its 200 does not tell; the retry's span ends once its
// body was read, with its 200.
func TestBufferedResponseSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		n := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n++
			var body io.ReadCloser = io.NopCloser(strings.NewReader("{}"))
			if n == 1 {
				body = &cutBody{}
			}
			return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: body, ContentLength: 2, Request: req}, nil
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithBackoff(0, 0), resilient.WithBufferedResponse(1<<10))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v; want the retry's 200", code, err)
		}
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 2 {
			t.Fatalf("%d CLIENT spans, want 2", len(clients))
		}
		a := attrs(clients[0].Attributes())
		if a["http.response.status_code"] != "200" || a["network.protocol.version"] != "1.1" || a["error.type"] != "connection_closed" {
			t.Errorf("cut attempt: %v; want http.response.status_code 200, network.protocol.version 1.1, error.type connection_closed", a)
		}
		if st := clients[0].Status(); st.Code != codes.Error || st.Description != "connection_closed" {
			t.Errorf("cut attempt: status %v %q, want Error connection_closed (not inferable from its 200)", st.Code, st.Description)
		}
		if a := attrs(clients[1].Attributes()); a["http.response.status_code"] != "200" || a["error.type"] != "" {
			t.Errorf("retry: %v, want its 200 and no error", a)
		}
		points := histogramPoints(t, tel.metrics(t)["http.client.request.duration"])
		want := "error.type=connection_closed,http.request.method=GET,http.response.status_code=200,network.protocol.version=1.1,server.address=api.test,server.port=80"
		if _, ok := points[want]; !ok || len(points) != 2 {
			t.Errorf("http.client.request.duration points %v, want %s and the retry's", sortedKeys(points), want)
		}
	})
}

// slowExporter exports as a collector that takes its time to answer: with
// sdktrace.NewSimpleSpanProcessor, each span's End waits for it.
type slowExporter struct {
	delay time.Duration
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (e *slowExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	time.Sleep(e.delay)
	e.mu.Lock()
	e.spans = append(e.spans, spans...)
	e.mu.Unlock()
	return nil
}

func (e *slowExporter) Shutdown(context.Context) error { return nil }

// TestSlowExporterDoesNotTimeOutAttempts: a span processor that exports
// each span as it ends (sdktrace.NewSimpleSpanProcessor), to an exporter
// slower than the attempt timeout, delays the call but does not take the
// attempt's time: a success is not cut into a timeout and sent again, a
// response returned stays readable; the CLIENT spans end at their
// responses' headers, and all reach the exporter, before the call's.
func TestSlowExporterDoesNotTimeOutAttempts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  int // status of the call
		hits  int
	}{
		{"success", []step{{status: 200}}, 200, 1},
		{"retried 503", []step{{status: 503}, {status: 200}}, 200, 2},
		{"final 404", []step{{status: 404}}, 404, 1},
		{"retried connection reset", []step{{err: syscall.ECONNRESET}, {status: 200}}, 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				exp := &slowExporter{delay: 2 * time.Second}
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
				base := &stub{steps: tc.steps}
				tr := resilient.New(base, resilient.WithAttemptTimeout(time.Second),
					Instrument(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}))
				req, _ := http.NewRequest("GET", "http://api.test/v1/x", nil)
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					t.Fatalf("%v after %d requests; want %d", err, len(base.sent("Traceparent")), tc.want)
				}
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want || rerr != nil || string(body) != "{}" {
					t.Errorf("%d %q (read error %v), want %d {}", resp.StatusCode, body, rerr, tc.want)
				}
				if got := len(base.sent("Traceparent")); got != tc.hits {
					t.Errorf("%d requests sent, want %d", got, tc.hits)
				}
				exp.mu.Lock()
				defer exp.mu.Unlock()
				if len(exp.spans) != tc.hits+1 {
					t.Fatalf("%d spans exported, want %d CLIENT and the call's", len(exp.spans), tc.hits)
				}
				for i, s := range exp.spans[:tc.hits] {
					if s.SpanKind() != trace.SpanKindClient || !s.EndTime().Equal(s.StartTime()) {
						t.Errorf("span %d: %v lasting %v; want CLIENT, ending at its answer from an instant base",
							i, s.SpanKind(), s.EndTime().Sub(s.StartTime()))
					}
				}
				if s := exp.spans[tc.hits]; s.SpanKind() != trace.SpanKindInternal {
					t.Errorf("last span exported is %v, want the call's", s.SpanKind())
				}
			})
		})
	}
}

// panickingProcessor panics when a span of kind ends.
type panickingProcessor struct{ kind trace.SpanKind }

func (p panickingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p panickingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanKind() == p.kind {
		panic("processor exploded")
	}
}
func (panickingProcessor) Shutdown(context.Context) error   { return nil }
func (panickingProcessor) ForceFlush(context.Context) error { return nil }

// closeCounter is a response body that counts its Closes.
type closeCounter struct {
	io.Reader
	closes *int
}

func (b closeCounter) Close() error { *b.closes++; return nil }

// TestPanickingProcessorReleases: a span processor that panics as a CLIENT
// or the INTERNAL span ends, handed the spans once the Transport is done
// with an attempt (see TestSlowExporterDoesNotTimeOutAttempts), panics to
// the caller as before, with every response body closed, the one the
// caller never gets included, and the host's slot (WithMaxInFlight(1))
// free for the next call.
func TestPanickingProcessorReleases(t *testing.T) {
	for _, kind := range []trace.SpanKind{trace.SpanKindClient, trace.SpanKindInternal} {
		for _, status := range []int{200, 404, 503} {
			t.Run(fmt.Sprintf("%v/%d", kind, status), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { panickingProcessorCalls(t, kind, status) })
			})
		}
	}
}

// panickingProcessorCalls makes the two calls of
// TestPanickingProcessorReleases: in a bubble, where a slot never freed
// would make the second call wait, and fail, at once.
func panickingProcessorCalls(t *testing.T, kind trace.SpanKind, status int) {
	sent, closes := 0, 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: closeCounter{strings.NewReader("{}"), &closes}, Request: req}, nil
	})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(panickingProcessor{kind}))
	tr := resilient.New(base, resilient.WithMaxInFlight(1), resilient.WithMaxRetries(1), resilient.WithBackoff(0, 0),
		Instrument(Config{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}))
	before := 0 // requests sent before the call
	for call := 1; call <= 2; call++ {
		before = sent
		func() {
			defer func() {
				if p := recover(); p != "processor exploded" {
					t.Errorf("call %d: recovered %v, want the processor's panic", call, p)
				}
			}()
			req, _ := http.NewRequest("GET", "http://api.test/", nil)
			tr.RoundTrip(req)
		}()
		if closes != sent {
			t.Errorf("call %d: %d responses, %d closed", call, sent, closes)
		}
	}
	if sent == before {
		t.Error("the second call sent nothing: its host's slot was not freed")
	}
}

// TestCanceledAttemptNamesNoCause: an attempt cut by the caller's context
// has error.type canceled, as its call has, whatever cause the caller gave
// its context: errgroup.WithContext cancels the group's calls with the
// error of the call that failed, net/http returns that cause as the
// attempt's error, and the CLIENT span and http.client.request.duration
// of this host said connection_refused (or timeout) for another host's
// failure.
func TestCanceledAttemptNamesNoCause(t *testing.T) {
	for name, cause := range map[string]error{
		"sibling refused":   fmt.Errorf("dial tcp 10.0.0.2:443: %w", syscall.ECONNREFUSED),
		"sibling timed out": fmt.Errorf("other call: %w", context.DeadlineExceeded),
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tel := newTelemetry()
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					<-req.Context().Done()
					return nil, context.Cause(req.Context()) // as net/http does
				})
				tr := resilient.New(base, Instrument(tel.config()))
				ctx, cancel := context.WithCancelCause(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
				time.AfterFunc(time.Second, func() { cancel(cause) })
				if _, err := do(t, &http.Client{Transport: tr}, req); err == nil {
					t.Fatal("no error")
				}
				for _, s := range tel.ended() {
					if a := attrs(s.Attributes()); a["error.type"] != "canceled" || s.Status().Description != "canceled" {
						t.Errorf("%v %s: error.type %q, status %v; want canceled", s.SpanKind(), s.Name(), a["error.type"], s.Status())
					}
				}
				for p := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
					if !strings.Contains(p, "error.type=canceled,") {
						t.Errorf("http.client.request.duration point %s, want error.type canceled", p)
					}
				}
			})
		})
	}
}

// TestResponseWithErrorIsNoAnswer: a base RoundTripper that returns a
// response together with an error (which the RoundTripper contract
// forbids; the Transport drops such a response, closes it and fails the
// attempt with the error) gets a CLIENT span without a response: the
// error's error.type and an Error status, not the dropped response's 200,
// which counted a failed, retried attempt as a success in
// http.client.request.duration.
func TestResponseWithErrorIsNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		n := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n++
			resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("{}")), Request: req}
			if n == 1 {
				return resp, fmt.Errorf("read tcp: %w", syscall.ECONNRESET)
			}
			return resp, nil
		})
		var observed []resilient.Attempt
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithObserver(func(a resilient.Attempt) { observed = append(observed, a) }))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		if len(observed) != 2 || observed[0].StatusCode != 0 || observed[0].Err == nil {
			t.Fatalf("the Transport saw %+v, want attempt 1 failed without a response", observed)
		}
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 2 {
			t.Fatalf("%d CLIENT spans, want 2", len(clients))
		}
		a := attrs(clients[0].Attributes())
		if a["error.type"] != "connection_reset" || a["http.response.status_code"] != "" || clients[0].Status().Code != codes.Error {
			t.Errorf("attempt 1: %v, status %v; want error.type connection_reset, no status code, Error", a, clients[0].Status())
		}
		if n, _ := total(t, tel.metrics(t), "http.client.request.duration"); n != 2 {
			t.Fatalf("http.client.request.duration count %v, want 2", n)
		}
		for p := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
			if strings.Contains(p, "status_code=200") && strings.Contains(p, "error.type") || !strings.Contains(p, "status_code=200") && !strings.Contains(p, "error.type=connection_reset") {
				t.Errorf("http.client.request.duration point %s", p)
			}
		}
		if points := histogramPoints(t, tel.metrics(t)["http.client.request.duration"]); len(points) != 2 {
			t.Errorf("http.client.request.duration points %v, want a 200 and a connection_reset", sortedKeys(points))
		}
	})
}

// TestNoResponseNorErrorIsOther: a base RoundTripper that returns neither
// a response nor an error (which the RoundTripper contract forbids) gets a
// CLIENT span that failed, error.type _OTHER and an Error status, in
// http.client.request.duration as well: not one that looks like a success
// without a status code.
func TestNoResponseNorErrorIsOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxRetries(0))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("the call succeeded, want it failed")
		}
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 1 {
			t.Fatalf("%d CLIENT spans, want 1", len(clients))
		}
		if a := attrs(clients[0].Attributes()); a["error.type"] != "_OTHER" || clients[0].Status().Code != codes.Error {
			t.Errorf("CLIENT span %v, status %v; want error.type _OTHER, Error", a, clients[0].Status())
		}
		for p := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
			if !strings.Contains(p, "error.type=_OTHER") {
				t.Errorf("http.client.request.duration point %s, want error.type=_OTHER", p)
			}
		}
	})
}

// TestPlainCallRecordsNoZeros: a call sent once over net/http, without
// hedges or requests written again, has no resilient.transparent_resends
// on its CLIENT span and adds no point to the counters of what it did not
// do (resilient.client.transparent_resends, resilient.client.hedges): a
// zero would be a series per host of nothing.
func TestPlainCallRecordsNoZeros(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	tel := newTelemetry()
	client := &http.Client{Transport: resilient.New(srv.Transport(), Instrument(tel.config()))}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/posts", nil)
	if _, err := do(t, client, req); err != nil {
		t.Fatal(err)
	}
	clients := tel.ended(int(trace.SpanKindClient))
	if len(clients) != 1 {
		t.Fatalf("%d CLIENT spans, want 1", len(clients))
	}
	if v, ok := attrs(clients[0].Attributes())["resilient.transparent_resends"]; ok {
		t.Errorf("CLIENT span has resilient.transparent_resends = %s, want none", v)
	}
	ms := tel.metrics(t)
	for _, name := range []string{"resilient.client.transparent_resends", "resilient.client.hedges"} {
		if _, ok := ms[name]; ok {
			t.Errorf("%s recorded, want nothing", name)
		}
	}
	if _, ok := ms["http.client.request.duration"]; !ok {
		t.Error("no http.client.request.duration: the call was not recorded")
	}
}

// orderProcessor records the starts and ends of spans, by kind, in the
// order the span processors see them.
type orderProcessor struct {
	mu  sync.Mutex
	log []string
}

func (p *orderProcessor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	p.add("start " + s.SpanKind().String())
}
func (p *orderProcessor) OnEnd(s sdktrace.ReadOnlySpan)    { p.add("end " + s.SpanKind().String()) }
func (p *orderProcessor) Shutdown(context.Context) error   { return nil }
func (p *orderProcessor) ForceFlush(context.Context) error { return nil }

func (p *orderProcessor) add(e string) {
	p.mu.Lock()
	p.log = append(p.log, e)
	p.mu.Unlock()
}

// TestFailedAttemptSpanEndsBeforeRetry: the CLIENT span of an attempt
// retried reaches the span processors as the Transport is done with it,
// before the retry's span starts: an exporter shows it while the call waits
// out its backoff, not once the whole call ended (or never, if the process
// stops while it waits). So for an attempt that failed without a response,
// and for one answered with a response that is retried (a 503 with
// Retry-After: 30), read before the wait: that span was kept back until the
// retry's own attempt reported.
func TestFailedAttemptSpanEndsBeforeRetry(t *testing.T) {
	for name, first := range map[string]step{
		"no response":      {err: syscall.ECONNRESET},
		"response retried": {status: 503, header: http.Header{"Retry-After": {"30"}}},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &orderProcessor{}
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
				base := &stub{steps: []step{first, {status: 200}}}
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
		})
	}
}
