package resilient

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerSlowProbeCloses: a host that recovers but answers slower than
// ProbeTimeout (an LLM completion, a report: 15s against the default 10s)
// closes its breaker once a probe answers with a success, even a probe
// that another attempt replaced as stale meanwhile. Before, the stale
// probe's late success was dropped with its slot: under steady traffic
// each probe went stale before it answered, and the breaker stayed
// half-open for ever, refusing nearly every call to a healthy host, which
// a plain client would have had answered.
func TestBreakerSlowProbeCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var healthy atomic.Bool
		var hits atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hits.Add(1)
			code := http.StatusInternalServerError
			if healthy.Load() {
				timer := time.NewTimer(15 * time.Second)
				defer timer.Stop()
				select {
				case <-timer.C:
				case <-req.Context().Done():
					return nil, req.Context().Err()
				}
				code = http.StatusOK
			}
			return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		const url = "http://api.test/"
		if code, _, _ := bkCall(t, tr, url); code != http.StatusInternalServerError {
			t.Fatalf("first call = %d, want its 500", code)
		}
		time.Sleep(10*time.Second + time.Millisecond) // half-open
		healthy.Store(true)

		// A call every 4s: the first is the probe, which answers 200
		// after 15s; the fourth, 12s in, finds it stale and probes in
		// its place. Every call made once the first probe answered
		// (16s in and later) must go through.
		var wg sync.WaitGroup
		var refusedAfter, okAfter atomic.Int32
		const calls = 12
		for k := range calls {
			wg.Go(func() {
				code, _, err := bkCall(t, tr, url)
				if k < 4 {
					return
				}
				switch {
				case errors.Is(err, ErrCircuitOpen):
					refusedAfter.Add(1)
				case err == nil && code == http.StatusOK:
					okAfter.Add(1)
				default:
					t.Errorf("call %d = %d, %v", k, code, err)
				}
			})
			synctest.Wait()
			time.Sleep(4 * time.Second)
		}
		wg.Wait()
		if n := refusedAfter.Load(); n != 0 {
			t.Errorf("%d of the %d calls made after the first probe answered 200 were refused (%d answered), want none: the breaker of a host slower than ProbeTimeout never closed", n, calls-4, okAfter.Load())
		}
		if got := tr.BreakerState(url); got != BreakerClosed {
			t.Errorf("breaker %v after its probes answered 200, want closed", got)
		}
	})
}
