package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
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
		switch {
		case resp != nil && err != nil:
			r.add("end %d error", resp.StatusCode)
		case resp != nil:
			r.add("end %d", resp.StatusCode)
		default:
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

// panicEndTracer is a Tracer whose attempts' end function panics, as an
// OpenTelemetry span processor or exporter that panics in span.End makes it.
type panicEndTracer struct{}

func (panicEndTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (panicEndTracer) StartAttempt(*http.Request, AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return nil, func(*http.Response, error) { panic("exporter exploded") }
}
func (panicEndTracer) Attempt(context.Context, Attempt) {}
func (panicEndTracer) EndCall(context.Context, *Report) {}

// TestTracerEndPanicClosesResponse: a panic of a Tracer's end function
// goes on to the caller, and the response it was given is closed rather
// than lost open, as after a panic in IsFailure: the caller never gets it,
// and its connection would stay taken. The body read within the attempt
// (WithBufferedResponse), longer than the buffer, is closed too. (Both were
// left open.)
func TestTracerEndPanicClosesResponse(t *testing.T) {
	long := func() io.ReadCloser { return io.NopCloser(strings.NewReader("0123456789")) }
	for name, tc := range map[string]struct {
		step rtStep
		opts []Option
	}{
		"headers":  {rtStep{body: "ok"}, nil},
		"buffered": {rtStep{rc: long}, []Option{WithBufferedResponse(4)}},
	} {
		t.Run(name, func(t *testing.T) {
			base := &rtScript{steps: []rtStep{tc.step}}
			tr := New(base, append(tc.opts, WithTracer(panicEndTracer{}))...)
			p := mustPanic(t, "the Tracer's panic did not reach the caller", func() {
				tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			})
			if p != "exporter exploded" {
				t.Errorf("panic value %v, want the Tracer's", p)
			}
			if base.numCalls() != 1 || !base.body(0).isClosed() {
				t.Errorf("%d requests; the response the Tracer panicked on closed: %v, want 1 and true", base.numCalls(), base.body(0).isClosed())
			}
		})
	}
}

// wireTracer records the path and AttemptInfo of each attempt that reaches
// the wire.
type wireTracer struct {
	mu    sync.Mutex
	infos []string
}

func (w *wireTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }

func (w *wireTracer) StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	w.mu.Lock()
	w.infos = append(w.infos, fmt.Sprintf("%s attempt %d hedge %d resend %d", req.URL.Path, info.Number, info.Hedge, info.ResendCount))
	w.mu.Unlock()
	return nil, nil
}

func (w *wireTracer) Attempt(context.Context, Attempt) {}
func (w *wireTracer) EndCall(context.Context, *Report) {}

// TestTracerUnsentCopyTakesNoNumber: a hedged copy that never reaches the
// wire takes no number: the next copy sent is the attempt's first, and
// the retry's resend count counts the requests sent. The attempt takes the
// reads' token at 0; the first copy, at 30ms, finds none (the next comes
// at 50ms), and the rate limiter refuses it (a copy does not wait for
// one); the second, at 60ms, gets it. Both the attempt and the copy get a
// 500, and the retry a 200. (The copy sent had hedge 2 and resend count 2,
// and so had the retry.)
func TestTracerUnsentCopyTakesNoNumber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gets atomic.Int32
		srv := &flightRT{
			latency: func(i int, r *http.Request) time.Duration {
				if i == 0 {
					return 200 * time.Millisecond
				}
				return 10 * time.Millisecond
			},
		}
		status := func(r *http.Request) int {
			if gets.Add(1) <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}
		wt := &wireTracer{}
		var obs observed
		tr := New(statusRT{srv, status}, WithHedging(Hedging{Delay: 30 * time.Millisecond, MaxHedges: 2}),
			WithRateLimit(rate.Every(50*time.Millisecond), 1), WithTracer(wt), WithObserver(obs.add),
			WithBackoff(time.Millisecond, time.Millisecond))
		var r Report
		if code, err := getIn(t, tr, WithReport(context.Background(), &r), "http://api.test/a"); code != 200 {
			t.Fatalf("%d, %v", code, err)
		}
		synctest.Wait()
		want := []string{
			"/a attempt 1 hedge 0 resend 0",
			"/a attempt 1 hedge 1 resend 1",
			"/a attempt 2 hedge 0 resend 2",
		}
		wt.mu.Lock()
		got := slices.Clone(wt.infos)
		wt.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("attempts on the wire:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if r.Attempts != 3 || r.Hedges != 1 {
			t.Errorf("Report %+v, want 3 attempts, 1 hedge", r)
		}
		if a := obs.path("/a"); len(a) != 2 || a[0].Hedges != 1 || a[1].Hedges != 0 {
			t.Errorf("attempts observed: %+v, want the first with one copy sent, the retry with none", a)
		}
	})
}

// statusRT answers with next's response, its status set by status.
type statusRT struct {
	next   http.RoundTripper
	status func(*http.Request) int
}

func (s statusRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil {
		resp.StatusCode = s.status(req)
	}
	return resp, err
}

// startPanicTracer is a Tracer whose StartCall (or, with attempt, its
// StartAttempt) panics, and that records whether EndCall was called.
type startPanicTracer struct{ attempt, ended bool }

func (p *startPanicTracer) StartCall(ctx context.Context, _ *http.Request) context.Context {
	if !p.attempt {
		panic("StartCall exploded")
	}
	return ctx
}
func (p *startPanicTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	if p.attempt {
		panic("StartAttempt exploded")
	}
	return req, nil
}
func (p *startPanicTracer) Attempt(context.Context, Attempt) {}
func (p *startPanicTracer) EndCall(context.Context, *Report) { p.ended = true }

// TestTracerStartCallPanic: a panic in a Tracer's StartCall goes on to the
// caller after the call ends as any call a panic goes through: its request
// body closed (the RoundTripper contract: on every path) and its Report
// filled (no attempt, no outcome), and the Tracer's EndCall not called,
// for no call of its started. (The body stayed open, and the Report kept
// the previous call's values.)
func TestTracerStartCallPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent := false
		rec := &startPanicTracer{}
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			sent = true
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		}), WithTracer(rec))
		body := newTrackedBody("payload")
		r := Report{Attempts: 7, Outcome: OutcomeSuccess, StatusCode: 200} // a previous call's
		req := newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/", body)
		mustPanic(t, "the panic was not propagated", func() { tr.RoundTrip(req) })
		if !body.isClosed() {
			t.Error("the request body was not closed")
		}
		if r != (Report{}) {
			t.Errorf("Report = %+v, want the zero Report of a call that made no attempt", r)
		}
		if sent || rec.ended {
			t.Errorf("after StartCall's panic: request sent %v, EndCall called %v; want neither", sent, rec.ended)
		}
	})
}

// TestTracerStartAttemptPanic: a panic in a Tracer's StartAttempt, which
// no layer below sees, closes the attempt's request body on its way to the
// caller: the caller's body, whether the attempt sent it as it is (a body
// with GetBody, replayed from it) or through the copy kept for replays (a
// body without). (It stayed open.)
func TestTracerStartAttemptPanic(t *testing.T) {
	for _, getBody := range []bool{false, true} {
		t.Run(fmt.Sprintf("GetBody %v", getBody), func(t *testing.T) {
			sent := false
			tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
				sent = true
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
			}), WithTracer(&startPanicTracer{attempt: true}))
			body := newTrackedBody("payload")
			req := newRequest(t, context.Background(), "POST", "http://api.test/", body)
			if getBody {
				req.GetBody = func() (io.ReadCloser, error) { return newTrackedBody("payload"), nil }
			}
			mustPanic(t, "the panic was not propagated", func() { tr.RoundTrip(req) })
			if !body.isClosed() {
				t.Error("the request body was not closed")
			}
			if sent {
				t.Error("the request was sent")
			}
		})
	}
}

// TestTracerResponseRequest: under a Tracer, the response's Request is the
// caller's request (its URL, its headers: no key stamped on the write, no
// header the Tracer set) with the call's context, which the Tracer's
// StartCall made and which outlives the response's body: an http.Client
// following a redirect finds the call there, and a caller that reads it
// for its next request gets neither the attempt's key nor a canceled
// context.
func TestTracerResponseRequest(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	tr := New(base, WithTracer(&recTracer{}))
	req := newRequest(t, context.Background(), "POST", "http://api.test/v1/posts", nil)
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := resp.Request
	if got.URL != req.URL || got.Method != "POST" || len(got.Header) != len(req.Header) {
		t.Errorf("resp.Request = %s %v with header %v; want the caller's %s %v with %v", got.Method, got.URL, got.Header, req.Method, req.URL, req.Header)
	}
	if v := got.Context().Value(ctxKey("span")); v != "call-span" {
		t.Errorf("resp.Request's context carries %v, want the call's (call-span)", v)
	}
	if err := got.Context().Err(); err != nil {
		t.Errorf("resp.Request's context ended with the body: %v", err)
	}
}

// TestTracerKeepsBaseResponseRequest: under a Tracer whose StartAttempt
// sends a copy of the request, a base that sets a request of its own as
// its response's Request (a signing base's signed copy) keeps it there,
// as without a Tracer (TestResponseRequestOfBase): only the Tracer's own
// copy is made the caller's request again.
func TestTracerKeepsBaseResponseRequest(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		signed := r.Clone(r.Context())
		signed.Header.Set("X-Signature", "sig")
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: signed}, nil
	})
	req := newRequest(t, context.Background(), "GET", "http://api.test/v1/me", nil)
	resp, err := roundTrip(t, New(base, WithTracer(&recTracer{})), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Request.Header.Get("X-Signature"); got != "sig" {
		t.Errorf("resp.Request has X-Signature %q, want the base's own request (sig)", got)
	}
}

// copyTracer sends each attempt as a copy with a Traceparent header of its
// own, and asks for no call when the attempt ends.
type copyTracer struct{}

func (copyTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (copyTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	out := req.Clone(req.Context())
	out.Header.Set("Traceparent", "span")
	return out, nil
}
func (copyTracer) Attempt(context.Context, Attempt) {}
func (copyTracer) EndCall(context.Context, *Report) {}

// TestTracerWithoutEndResponseRequest: a Tracer's copy of the request
// stays the Tracer's when its StartAttempt returns no end function as when
// it returns one (TestTracerResponseRequest): the response's Request is
// the caller's request, without the Tracer's header; the caller's request
// itself, as without a Tracer, when StartCall kept the request's context.
func TestTracerWithoutEndResponseRequest(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	req := newRequest(t, context.Background(), "GET", "http://api.test/v1/me", nil)
	resp, err := roundTrip(t, New(base, WithTracer(copyTracer{})), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Request.Header.Get("Traceparent"); got != "" || resp.Request.URL != req.URL {
		t.Errorf("resp.Request has Traceparent %q, URL %v; want the caller's request (no Traceparent, URL %v)", got, resp.Request.URL, req.URL)
	}
	if resp.Request != req {
		t.Error("resp.Request is a copy of the caller's request, whose context StartCall kept; want the request itself")
	}
}

// endTracer records what each attempt's end function is told.
type endTracer struct {
	mu    sync.Mutex
	ended []error
}

func (e *endTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (e *endTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return req, func(_ *http.Response, err error) {
		e.mu.Lock()
		e.ended = append(e.ended, err)
		e.mu.Unlock()
	}
}
func (e *endTracer) Attempt(context.Context, Attempt) {}
func (e *endTracer) EndCall(context.Context, *Report) {}

// TestTracerEndsAnAttemptWhoseBasePanics: the span of an attempt whose
// base RoundTripper panics ends, with an error saying so, before the panic
// goes on to the caller: not as an attempt without a response or an error,
// which a Tracer would record as neither a success nor a failure.
func TestTracerEndsAnAttemptWhoseBasePanics(t *testing.T) {
	tracer := &endTracer{}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { panic("base exploded") })
	tr := New(base, WithTracer(tracer))
	mustPanic(t, "the base's panic did not reach the caller", func() {
		tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	})
	if len(tracer.ended) != 1 || !errors.Is(tracer.ended[0], errPanicked) {
		t.Errorf("the attempt's end was told %v; want one error wrapping %q", tracer.ended, errPanicked)
	}
}
