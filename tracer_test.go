package resilient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type ctxKey string

// recTracer records what a Tracer sees.
type recTracer struct {
	mu     sync.Mutex
	events []string
}

func (r *recTracer) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recTracer) StartCall(ctx context.Context, req *http.Request) context.Context {
	r.add("call %s", req.Method)
	return context.WithValue(ctx, ctxKey("span"), "call-span")
}

func (r *recTracer) StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	r.add("attempt %d resend %d parent %v", info.Number, info.ResendCount, req.Context().Value(ctxKey("span")))
	out := req.Clone(req.Context())
	out.Header.Set("Traceparent", fmt.Sprintf("span-%d", info.ResendCount))
	return out, func(resp *http.Response, err error) {
		if resp != nil {
			r.add("end %d", resp.StatusCode)
		} else {
			r.add("end error")
		}
	}
}

func (r *recTracer) Attempt(ctx context.Context, a Attempt) {
	r.add("record %d %s %v", a.Number, a.Outcome, ctx.Value(ctxKey("span")))
}

func (r *recTracer) EndCall(ctx context.Context, rep *Report) {
	r.add("end call %d attempts %v", rep.Attempts, ctx.Value(ctxKey("span")))
}

func TestTracer(t *testing.T) {
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
	rec := &recTracer{}
	var ctxSeen []any
	tr := New(s, fastRetries, WithTracer(rec), WithContextObserver(func(ctx context.Context, a Attempt) {
		ctxSeen = append(ctxSeen, ctx.Value(ctxKey("span")))
	}))
	req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []string{
		"call GET",
		"attempt 1 resend 0 parent call-span", "end 503", "record 1 transient call-span",
		"attempt 2 resend 1 parent call-span", "end 200", "record 2 success call-span",
		"end call 2 attempts call-span",
	}
	if got := strings.Join(rec.events, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if h := s.headers("Traceparent"); strings.Join(h, ",") != "span-0,span-1" {
		t.Errorf("Traceparent sent %q, want each attempt's own", h)
	}
	if len(ctxSeen) != 2 || ctxSeen[0] != "call-span" {
		t.Errorf("context observer saw %v, want the call's context twice", ctxSeen)
	}
	if req.Header.Get("Traceparent") != "" {
		t.Error("the caller's request was modified")
	}
}

// TestTracerSkipsLocalRefusals: an attempt the breaker refuses never
// reaches the wire, so the tracer gets its record but no attempt span.
func TestTracerSkipsLocalRefusals(t *testing.T) {
	s := &rtScript{steps: []rtStep{{status: 500}}}
	rec := &recTracer{}
	tr := New(s, fastRetries, WithMaxRetries(2), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithoutRetryBudget(), WithTracer(rec))
	resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if resp != nil {
		resp.Body.Close()
	}
	got := strings.Join(rec.events, "\n")
	if strings.Count(got, "attempt ") != 1 || strings.Count(got, "record ") != 2 || !strings.Contains(got, "circuit_open") {
		t.Errorf("events:\n%s\nwant one attempt on the wire, then a refusal recorded", got)
	}
}

// TestTracerHedgedResendCount: a hedged copy is the call's next request on
// the wire: the first copy of the first attempt has resend count 1, as
// OpenTelemetry's http.request.resend_count counts it, not 2.
func TestTracerHedgedResendCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := slowFirst()
		rec := &recTracer{}
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithTracer(rec))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		var got []string
		for _, e := range rec.events {
			if strings.HasPrefix(e, "attempt ") {
				got = append(got, e)
			}
		}
		want := []string{"attempt 1 resend 0 parent call-span", "attempt 1 resend 1 parent call-span"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("attempts on the wire:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestTracerEndsCallOnPanic: a panic of the base RoundTripper that goes
// through RoundTrip ends the attempt and the call, as any call ends, and
// reaches the caller with its own value. (The call was never ended: an
// OpenTelemetry span left open, and its call duration never recorded.)
func TestTracerEndsCallOnPanic(t *testing.T) {
	rec := &recTracer{}
	tr := New(roundTripFunc(func(*http.Request) (*http.Response, error) { panic("base exploded") }), WithTracer(rec))
	func() {
		defer func() {
			if p := recover(); p != "base exploded" {
				t.Errorf("recovered %v, want the base's panic", p)
			}
		}()
		tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	}()
	want := []string{
		"call GET",
		"attempt 1 resend 0 parent call-span", "end error",
		"end call 1 attempts call-span",
	}
	if got := strings.Join(rec.events, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
