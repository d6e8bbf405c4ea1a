package resilientotel

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
)

// TestAttemptContextNeedsNoGoroutine: the context an attempt is sent with,
// which carries its span (and its client trace), lets net/http follow the
// Transport's attempt context without a goroutine of its own, as it does
// without this package. For a caller's context that is never canceled
// (context.Background), the Transport gives each attempt a context of its
// own whose AfterFunc a context derived from it uses; net/http's
// Transport derives one per request (context.WithCancelCause, which the
// base below does as net/http does). A context that wraps it and hides
// its AfterFunc costs a goroutine of the context package per attempt,
// live until the request ends. So does the call's context of a Transport
// whose caller is another Transport's attempt (a Transport nested in
// another).
func TestAttemptContextNeedsNoGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nested bool
		cfg    func(*telemetry) Config
	}{
		{"uninstrumented", false, nil}, // the reference: none
		{"sdk", false, (*telemetry).config},
		{"sdk/nested", true, (*telemetry).config},
		// A no-op tracer under a caller's span still sends the attempt
		// with a context that holds a span of its own.
		{"noop-tracer/metrics", false, func(tel *telemetry) Config {
			cfg := noopConfig()
			cfg.MeterProvider = tel.mp
			return cfg
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tel := newTelemetry()
				goroutines := 0
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					_, cancel := context.WithCancelCause(req.Context()) // as net/http's Transport.roundTrip
					goroutines += cancelGoroutines()
					cancel(nil)
					return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
						Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
				})
				var opts []resilient.Option
				if tc.cfg != nil {
					opts = append(opts, Instrument(tc.cfg(tel)))
				}
				var rt http.RoundTripper = resilient.New(base, opts...)
				if tc.nested {
					rt = resilient.New(rt)
				}
				const calls = 3
				for range calls {
					req, _ := http.NewRequestWithContext(remoteParent(context.Background()), http.MethodGet, "https://api.test/v1/posts", nil)
					resp, err := rt.RoundTrip(req)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					synctest.Wait() // the goroutines that followed the call's contexts are gone
				}
				if goroutines != 0 {
					t.Errorf("%d calls: net/http's context of a request started %d goroutines to follow the attempt's, want 0", calls, goroutines)
				}
			})
		})
	}
}

// cancelGoroutines counts the goroutines of the caller's synctest bubble
// that the context package started to follow a parent context it cannot
// follow otherwise (one without an AfterFunc of its own).
func cancelGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")
	// The caller's goroutine comes first: "goroutine 7 [running, synctest bubble 1]:".
	head, _, _ := strings.Cut(stacks[0], "\n")
	_, bubble, _ := strings.Cut(head, ", synctest bubble ")
	count := 0
	for _, s := range stacks[1:] {
		if bubble != "" && strings.Contains(s, ", synctest bubble "+bubble) &&
			strings.Contains(s, "created by context.(*cancelCtx).propagateCancel") {
			count++
		}
	}
	return count
}
