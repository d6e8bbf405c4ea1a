package resilient

import (
	"context"
	"net/http"
	"testing"

	"github.com/cenkalti/backoff/v4"
)

// unsetStore is a QuotaStore whose methods need the value it points to,
// as a *redisquota.Store's do.
type unsetStore struct{ parts map[string]QuotaPartition }

func (s *unsetStore) Partition(name string) QuotaPartition { return s.parts[name] }

// unsetTracer is a Tracer whose methods need the value it points to.
type unsetTracer struct{ name string }

func (t *unsetTracer) StartCall(ctx context.Context, _ *http.Request) context.Context {
	_ = t.name
	return ctx
}

func (t *unsetTracer) StartAttempt(req *http.Request, _ AttemptInfo) (*http.Request, func(*http.Response, error)) {
	_ = t.name
	return req, func(*http.Response, error) {}
}

func (t *unsetTracer) Attempt(context.Context, Attempt) { _ = t.name }
func (t *unsetTracer) EndCall(context.Context, *Report) { _ = t.name }

// TestTypedNilStoreAndTracerAreNone: a QuotaStore or a Tracer variable
// left unset (var store *redisquota.Store, assigned only when Redis is
// configured) is an interface holding a nil pointer, not a nil interface:
// WithQuotaStore and WithTracer took it, and every call through the
// Transport panicked on a nil dereference in the store's or the tracer's
// method, where their doc comments say that a nil store restores the
// default and a nil tracer removes it; and so did the first retry of a
// call whose WithBackOff factory returned a BackOff variable left unset,
// where a nil BackOff means the default schedule. Each is taken for none:
// a call answered 503, then 200, is retried once and returns the 200.
func TestTypedNilStoreAndTracerAreNone(t *testing.T) {
	var store *unsetStore
	var tracer *unsetTracer
	var bo *backoff.ExponentialBackOff
	for name, opt := range map[string]Option{
		"WithQuotaStore(nil *store)":  WithQuotaStore(store),
		"WithTracer(nil *tracer)":     WithTracer(tracer),
		"after a store, a nil *store": Options(WithQuotaStore(&unsetStore{}), WithQuotaStore(store)),
		"WithBackOff(nil *BackOff)":   WithBackOff(func() backoff.BackOff { return bo }),
	} {
		t.Run(name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}, {status: http.StatusOK, body: "ok"}}}
			tr := New(s, WithBackoff(0, 0), opt)
			var (
				resp *http.Response
				err  error
			)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("RoundTrip panicked: %v; want the call sent as without the option", p)
					}
				}()
				resp, err = roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			}()
			if err != nil {
				t.Fatal(err)
			}
			if got := readBody(t, resp); resp.StatusCode != http.StatusOK || got != "ok" || s.numCalls() != 2 {
				t.Errorf("status %d, body %q after %d attempts; want 200 \"ok\" after 2", resp.StatusCode, got, s.numCalls())
			}
		})
	}
}
