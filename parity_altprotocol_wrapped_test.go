package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestAltProtocolSkipWrapped: a base that declines requests with
// http.ErrSkipAltProtocol wrapped by a middleware (fmt.Errorf("…: %w"), as
// a logging or tracing RoundTripper does) has declined the request before
// sending it, as the bare sentinel says: a plain client over it fails at
// once, the base asked once. The Transport retried it as an unknown error,
// six times over its backoff, and counted each against the host's breaker,
// which opened on a host that never got a request.
func TestAltProtocolSkipWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			asked.Add(1)
			return nil, fmt.Errorf("h2 middleware: %w", http.ErrSkipAltProtocol)
		})
		tr := New(alt, WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		for i := range 2 {
			asked.Store(0)
			req, _ := http.NewRequest("GET", "http://a.test/", nil)
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, http.ErrSkipAltProtocol) {
				t.Errorf("call %d: err = %v, want the base's declining error", i+1, err)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("call %d: the base was asked %d times, want 1 (a plain client's once)", i+1, n)
			}
		}
		if s := tr.BreakerState("http://a.test/"); s != BreakerClosed {
			t.Errorf("breaker %v after the base declined, want closed", s)
		}
	})
}

// TestAltProtocolSkipWrappedAfterAnAnswer: a GET answered 503 whose retry
// the base declines with the wrapped sentinel ends with that 503, as a
// retry refused does and as a plain client over the base ends: it was
// retried as an unknown error until the retries ran out, and the call
// ended with the base's error, the 503 thrown away.
func TestAltProtocolSkipWrappedAfterAnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
					Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
			}
			return nil, fmt.Errorf("h2 middleware: %w", http.ErrSkipAltProtocol)
		})
		tr := New(alt)
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("GET = %v; want the 503 the host answered", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET = %d, want 503", resp.StatusCode)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("the base was asked %d times, want 2 (the 503, then the declined retry)", n)
		}
	})
}

// TestAltProtocolSkipRetryCostsNoBudget: a retry the base declines with
// http.ErrSkipAltProtocol is not sent after all, and ends the call as a
// retry refused does: it gives back the retry budget it spent (see
// RetryBudget), so the host's next call that gets a 503 is retried as it
// would have been. The declined retry kept its token: with a Burst of 1,
// the next call's 503 was returned without a retry.
func TestAltProtocolSkipRetryCostsNoBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the first call's retry
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		tr := New(alt, WithMaxRetries(1), WithRetryBudget(RetryBudget{Burst: 1}))
		for i := range 2 {
			req, _ := http.NewRequest("GET", "http://a.test/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("call %d: %v; want the 503", i+1, err)
			}
			resp.Body.Close()
		}
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4 (each call's 503 and its retry: the declined one spent no budget)", n)
		}
	})
}
