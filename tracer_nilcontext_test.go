package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
)

// nilCallTracer is a Tracer whose StartCall returns a nil Context (one that
// follows nothing for a call it does not sample, say), and whose
// StartAttempt returns no request and no function, which the Transport
// takes as the attempt's own request and nothing to call.
type nilCallTracer struct {
	mu    sync.Mutex
	ended []context.Context
}

func (*nilCallTracer) StartCall(context.Context, *http.Request) context.Context { return nil }
func (*nilCallTracer) StartAttempt(*http.Request, AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return nil, nil
}
func (*nilCallTracer) Attempt(context.Context, Attempt) {}
func (tr *nilCallTracer) EndCall(ctx context.Context, _ *Report) {
	tr.mu.Lock()
	tr.ended = append(tr.ended, ctx)
	tr.mu.Unlock()
}

// nilCallTracerKey marks the request's context in TestTracerNilCallContext.
type nilCallTracerKey struct{}

// TestTracerNilCallContext: a Tracer whose StartCall returns a nil Context
// made every call through the Transport panic on a nil dereference, its
// retry loop using the call's context, where a StartAttempt that returns a
// nil request is taken for the attempt's own. The call keeps its own
// context instead: it is retried and answered as without the Tracer, and
// EndCall gets the request's context.
func TestTracerNilCallContext(t *testing.T) {
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200, body: "ok"}}}
	tracer := &nilCallTracer{}
	tr := New(s, WithTracer(tracer), fastRetries)
	ctx := context.WithValue(context.Background(), nilCallTracerKey{}, "caller's")
	var resp *http.Response
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("RoundTrip panicked: %v", p)
			}
		}()
		resp, err = tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
	}()
	if err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, resp); resp.StatusCode != 200 || got != "ok" || s.numCalls() != 2 {
		t.Errorf("status %d, body %q after %d attempts; want 200 \"ok\" after 2", resp.StatusCode, got, s.numCalls())
	}
	if len(tracer.ended) != 1 || tracer.ended[0] != ctx {
		t.Errorf("EndCall got %v; want the request's context once", tracer.ended)
	}
}
