package resilientotel

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// seenRequests records, for each request the fault server reads (see
// resilienttest.WithExchanges), the traceparent it carries and the status
// it was answered with (0 for none: the connection was dropped).
type seenRequests struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	traceparent string
	status      int
}

func (r *seenRequests) add(e resilienttest.Exchange) {
	r.mu.Lock()
	r.seen = append(r.seen, seenRequest{e.Header.Get("Traceparent"), e.Status})
	r.mu.Unlock()
}

func (r *seenRequests) snapshot() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// api is the handler behind the faults: GET /r/{n} redirects to
// /items/{n}, GET /items/{n} answers it, POST /items creates one.
func api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /r/{n}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/items/"+r.PathValue("n"), http.StatusFound)
	})
	mux.HandleFunc("GET /items/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":{"id":%q}}`, r.PathValue("n"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"data":{"id":"new"}}`)
	})
	return mux
}

// TestProofTenThousandCalls sends 10,000 calls (reads, reads that are
// redirected, keyed writes) from 8 goroutines through an http.Client and an
// instrumented Transport, to a resilienttest server that answers 8% of
// requests with a 5xx, 4% with a 429 and Retry-After: 1, and drops 4% of
// connections (half before, half after processing), in a synctest bubble
// (waits in fake time). It checks, against what the server itself saw:
//
//   - exactly one CLIENT span per request that reached the server: the span
//     ids the server read in the traceparents are the CLIENT spans' ids,
//     none missing, none extra. net/http resends a replayable request
//     itself, once, on a reused connection the server closed before
//     answering; such a resend is inside the base RoundTripper and carries
//     the same traceparent: each CLIENT span counts them
//     (resilient.transparent_resends), and so does a metric;
//   - each CLIENT span's status code (or its error.type) is what the server
//     answered (or did not) to its request;
//   - per call, resend counts 0, 1, …, n-1 for its n requests, across
//     retries and redirects, every CLIENT span under an INTERNAL span of
//     its call, every INTERNAL span under the caller's;
//   - http.client.request.duration counts per status agree with the
//     server's, and the resilient.* metrics with the Transport's own
//     records (an observer) and the INTERNAL spans.
//
// The retry budget stays on with its defaults: under 12% of retryable
// failures it refuses few retries, if any, and the refusals it makes are
// counted and checked like the rest.
func TestProofTenThousandCalls(t *testing.T) {
	const calls, workers = 10000, 8
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var fr seenRequests
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(api()),
			resilienttest.WithFaults(resilienttest.Faults{
				Seed: 17, ServerError: 0.08, RateLimit: 0.04, RetryAfter: time.Second, DropBefore: 0.02, DropAfter: 0.02,
			}),
			resilienttest.WithExchanges(fr.add))
		defer srv.Close()

		// The Transport's own record of each attempt, by trace.
		var recMu sync.Mutex
		records := map[trace.TraceID][]resilient.Attempt{}
		tr := resilient.New(srv.Transport(), Instrument(tel.config()),
			resilient.WithKeyHonoringHosts("api.test"),
			resilient.WithContextObserver(func(ctx context.Context, a resilient.Attempt) {
				id := trace.SpanContextFromContext(ctx).TraceID()
				recMu.Lock()
				records[id] = append(records[id], a)
				recMu.Unlock()
			}))
		client := &http.Client{Transport: tr}
		tracer := tel.tp.Tracer("test")

		type result struct {
			trace  trace.TraceID
			root   trace.SpanID
			status int
			err    error
		}
		results := make([]result, calls)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < calls; i += workers {
					ctx, span := tracer.Start(context.Background(), "call")
					var req *http.Request
					switch i % 10 {
					case 6, 7:
						req, _ = http.NewRequestWithContext(ctx, "GET", "http://api.test/r/"+strconv.Itoa(i), nil)
					case 8, 9:
						req, _ = http.NewRequestWithContext(ctx, "POST", "http://api.test/items",
							strings.NewReader(`{"n":`+strconv.Itoa(i)+`}`))
					default:
						req, _ = http.NewRequestWithContext(ctx, "GET", "http://api.test/items/"+strconv.Itoa(i)+"?token=s3cret", nil)
					}
					code, err := do(t, client, req)
					span.End()
					results[i] = result{span.SpanContext().TraceID(), span.SpanContext().SpanID(), code, err}
				}
			})
		}
		wg.Wait()

		// What the server saw, by span id.
		seen := fr.snapshot()
		bySpan := map[trace.SpanID][]int{} // statuses, in order
		for _, s := range seen {
			parts := strings.Split(s.traceparent, "-")
			if len(parts) != 4 || len(parts[2]) != 16 {
				t.Fatalf("server read traceparent %q", s.traceparent)
			}
			id, err := trace.SpanIDFromHex(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			bySpan[id] = append(bySpan[id], s.status)
		}
		stats := srv.Stats()
		if stats.Requests != len(seen) {
			t.Fatalf("resilienttest counted %d requests, and told of %d", stats.Requests, len(seen))
		}

		// Spans.
		byTrace := map[trace.TraceID]struct{ calls, clients []sdktrace.ReadOnlySpan }{}
		clientIDs := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range tel.ended() {
			e := byTrace[s.SpanContext().TraceID()]
			switch s.SpanKind() {
			case trace.SpanKindClient:
				if _, dup := clientIDs[s.SpanContext().SpanID()]; dup {
					t.Fatalf("two CLIENT spans with id %v", s.SpanContext().SpanID())
				}
				clientIDs[s.SpanContext().SpanID()] = s
				e.clients = append(e.clients, s)
			case trace.SpanKindInternal:
				e.calls = append(e.calls, s)
			}
			byTrace[s.SpanContext().TraceID()] = e
		}
		hidden, dropped := 0, 0
		statusCount := map[int]int{}     // server answers by status, 0 for none
		answer := map[trace.SpanID]int{} // the answer to each span's request; 0 for none
		for id, sts := range bySpan {
			if _, ok := clientIDs[id]; !ok {
				t.Errorf("the server read a request of span %v, which is no CLIENT span", id)
			}
			hidden += len(sts) - 1
			for _, st := range sts {
				statusCount[st]++
				if st == 0 {
					dropped++
					continue
				}
				if answer[id] != 0 {
					// net/http resends only a request it got no answer to.
					t.Errorf("span %v: the server answered its request twice (%v)", id, sts)
				}
				answer[id] = st
			}
		}
		if dropped != stats.Dropped || statusCount[429] != stats.RateLimited {
			t.Errorf("exchanges: %d dropped, %d 429s; resilienttest: %d, %d", dropped, statusCount[429], stats.Dropped, stats.RateLimited)
		}
		for id, s := range clientIDs {
			if _, ok := bySpan[id]; !ok {
				t.Errorf("CLIENT span %v (%v) reached no server", id, attrs(s.Attributes()))
				continue
			}
			a := attrs(s.Attributes())
			last := answer[id]
			switch {
			case last == 0 && (a["http.response.status_code"] != "" || a["error.type"] == "" || s.Status().Code != codes.Error):
				t.Errorf("CLIENT span %v: %v, but the server dropped its request", id, a)
			case last != 0 && a["http.response.status_code"] != strconv.Itoa(last):
				t.Errorf("CLIENT span %v: status %q, the server answered %d", id, a["http.response.status_code"], last)
			}
			if got, want := atoi(a["resilient.transparent_resends"]), len(bySpan[id])-1; got != want {
				t.Errorf("CLIENT span %v: %d transparent resends, the server read its request %d times", id, got, want+1)
			}
			if strings.Contains(a["url.full"], "s3cret") {
				t.Errorf("url.full %q", a["url.full"])
			}
		}

		// Per call.
		serverSpans := map[trace.TraceID]int{} // distinct CLIENT spans the server saw, by trace
		for id := range bySpan {
			if s, ok := clientIDs[id]; ok {
				serverSpans[s.SpanContext().TraceID()]++
			}
		}
		totalRecords, hops, retried, waitedHops := 0, 0, 0, 0
		var waited, rateWait time.Duration
		rateWaits, budget, breaker, limited := 0, 0, 0, 0
		for i, r := range results {
			e := byTrace[r.trace]
			n := len(e.clients)
			var resends []int
			for _, s := range e.clients {
				c, _ := strconv.Atoi(attrs(s.Attributes())["http.request.resend_count"])
				resends = append(resends, c)
				if !slices.ContainsFunc(e.calls, func(c sdktrace.ReadOnlySpan) bool { return c.SpanContext().SpanID() == s.Parent().SpanID() }) {
					t.Errorf("call %d: a CLIENT span outside its calls", i)
				}
			}
			slices.Sort(resends)
			for j, c := range resends {
				if c != j {
					t.Fatalf("call %d: resend counts %v, want 0…%d", i, resends, n-1)
				}
			}
			if distinct := serverSpans[r.trace]; distinct != n {
				t.Errorf("call %d: %d CLIENT spans, the server saw %d of them", i, n, distinct)
			}
			attempts := 0
			for _, c := range e.calls {
				if c.Parent().SpanID() != r.root {
					t.Errorf("call %d: an INTERNAL span outside the caller's", i)
				}
				ca := attrs(c.Attributes())
				k, _ := strconv.Atoi(ca["resilient.attempts"])
				attempts += k
				hops++
				if k > 1 {
					retried++
				}
			}
			if want := (i%10 == 6 || i%10 == 7) && r.err == nil && r.status == 200; want && len(e.calls) != 2 {
				t.Errorf("call %d: redirected, %d INTERNAL spans, want 2", i, len(e.calls))
			}
			recs := records[r.trace]
			if attempts != len(recs) {
				t.Errorf("call %d: INTERNAL spans count %d attempts, the Transport recorded %d", i, attempts, len(recs))
			}
			totalRecords += len(recs)
			var w time.Duration
			for _, a := range recs {
				w += a.LocalWait
				if a.Retry {
					w += a.Delay
				}
				if a.LocalWait > 0 {
					rateWaits++
					rateWait += a.LocalWait
				}
				switch {
				case a.StopReason == resilient.StopRetryBudget:
					budget++
				case a.Outcome == resilient.OutcomeCircuitOpen:
					breaker++
				case a.Outcome == resilient.OutcomeRateLimited:
					limited++
				}
			}
			waited += w
			for _, c := range e.calls {
				if v, _ := strconv.ParseFloat(attrs(c.Attributes())["resilient.wait.duration"], 64); v > 0 {
					waitedHops++
				}
			}
			// The last call's span says how the caller's call ended.
			lastCall := e.calls[len(e.calls)-1]
			for _, c := range e.calls {
				if c.EndTime().After(lastCall.EndTime()) {
					lastCall = c
				}
			}
			la := attrs(lastCall.Attributes())
			if r.err != nil && la["error.type"] == "" || r.err == nil && la["http.response.status_code"] != strconv.Itoa(r.status) {
				t.Errorf("call %d: %d, %v; its last INTERNAL span says %v", i, r.status, r.err, la)
			}
		}

		// Metrics.
		ms := tel.metrics(t)
		byStatus := map[string]float64{}
		for k, p := range histogramPoints(t, ms["http.client.request.duration"]) {
			st := "none"
			for _, kv := range strings.Split(k, ",") {
				if v, ok := strings.CutPrefix(kv, "http.response.status_code="); ok {
					st = v
				}
			}
			byStatus[st] += p[0]
		}
		var metricTotal float64
		for st, n := range byStatus {
			metricTotal += n
			want := float64(statusCount[atoi(st)])
			if st == "none" {
				want = float64(statusCount[0] - hidden)
			}
			if n != want {
				t.Errorf("http.client.request.duration, status %s: %v, the server answered %v", st, n, want)
			}
		}
		if metricTotal != float64(len(clientIDs)) || float64(len(seen)) != metricTotal+float64(hidden) {
			t.Errorf("http.client.request.duration: %v; CLIENT spans %d; server requests %d = %v + %d resent by net/http",
				metricTotal, len(clientIDs), len(seen), metricTotal, hidden)
		}
		check := func(name string, wantCount, wantSum float64) {
			t.Helper()
			n, sum := total(t, ms, name)
			if n != wantCount || math.Abs(sum-wantSum) > 1e-6*math.Max(1, wantSum) {
				t.Errorf("%s: count %v, sum %v; want %v, %v", name, n, sum, wantCount, wantSum)
			}
		}
		check(MetricCallRetries, float64(retried), float64(totalRecords-hops))
		check(MetricCallDuration, float64(hops), mustSum(t, ms, MetricCallDuration))
		check(MetricCallWait, float64(waitedHops), waited.Seconds())
		check(MetricRateLimitWait, float64(rateWaits), rateWait.Seconds())
		check(MetricRetryBudgetRefusal, float64(budget), float64(budget))
		check(MetricBreakerRefusals, float64(breaker), float64(breaker))
		check(MetricRateLimitRefusals, float64(limited), float64(limited))
		check(MetricTransparentResends, float64(hidden), float64(hidden))

		ok := 0
		for _, r := range results {
			if r.err == nil && r.status < 300 {
				ok++
			}
		}
		t.Logf("%d calls (%d succeeded), %d INTERNAL spans, %d CLIENT spans; server: %d requests (%d answered 5xx, %d 429, %d dropped), %d of them resent by net/http itself; %d attempt records, %d retried calls, %d rate-limit waits (%v), %d budget refusals, %d breaker refusals, %d rate-limit refusals",
			calls, ok, hops, len(clientIDs), len(seen), stats.ServerErrors, stats.RateLimited, dropped, hidden,
			totalRecords, retried, rateWaits, rateWait, budget, breaker, limited)
		if ok < calls*99/100 {
			t.Errorf("only %d of %d calls succeeded", ok, calls)
		}
	})
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// mustSum returns the sum of a histogram, for a check of its count alone.
func mustSum(t testing.TB, ms map[string]metricdata.Metrics, name string) float64 {
	_, sum := total(t, ms, name)
	return sum
}
