package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingAdaptiveDelayIsTheTimeToHeaders: the adaptive hedging delay is
// the host's time to response headers (see Hedging.Delay), not the time an
// attempt took to be classified: a host that answers its errors at 10ms,
// with bodies that trickle (one byte every 100ms, which the classifier
// reads for their envelope for a second), answers at 10ms. A later call
// that the host answers only at 500ms gets its copy near 10ms, and returns
// with the copy's answer, long before 500ms. Headers that come at once, as
// in a testing/synctest bubble whose clock does not advance while the host
// answers, are a time to headers of zero, not the second of the body.
func TestHedgingAdaptiveDelayIsTheTimeToHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers time.Duration // when the errors' headers come
	}{
		{"at 10ms", 10 * time.Millisecond},
		{"at once", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const answers = 2 * minHedgeSamples // first without hedging, then hedged
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					n := calls.Add(1)
					d := 10 * time.Millisecond
					switch {
					case n <= answers:
						d = tc.headers
					case n == answers+1:
						d = 500 * time.Millisecond // the slow call's attempt
					}
					if d > 0 {
						timer := time.NewTimer(d)
						defer timer.Stop()
						select {
						case <-timer.C:
						case <-req.Context().Done():
							return nil, context.Cause(req.Context())
						}
					}
					if n <= answers {
						return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/json"}},
							Body:          &trickleBody{stallBody: newStallBody(req.Context(), ""), slow: `{"error":{"code":"not_found","message":"no such post"}}`},
							ContentLength: -1, Request: req}, nil
					}
					return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithHedging(Hedging{}))
				var r Report
				ctx := WithReport(context.Background(), &r)
				for range answers {
					resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
					if err != nil || resp.StatusCode != http.StatusNotFound {
						t.Fatalf("RoundTrip = %v, %v; want the 404", resp, err)
					}
					resp.Body.Close()
				}
				if n := calls.Load(); n != answers {
					t.Fatalf("%d requests for %d calls answered, want as many", n, answers)
				}
				start := time.Now()
				resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if d := time.Since(start); r.Hedges != 1 || d >= 500*time.Millisecond {
					t.Errorf("every answer's headers came %s: a call answered at 500ms got %d copies, returned after %v; want 1 copy, before 500ms", tc.name, r.Hedges, d)
				}
				synctest.Wait()
				if n := calls.Load(); n != answers+2 {
					t.Errorf("%d requests, want %d: the slow call's attempt and its copy", n, answers+2)
				}
			})
		})
	}
}

// TestHedgingLatencyOfAFailureOutwaited: an attempt answered with an error
// status that the Transport does not read (WithMaxPeek(0)), while a copy
// of it is in flight, waits one hedging delay more for the copy (see
// hedgeRun.wait); the host's latency is still the attempt's time to its
// answer, 8ms, not that plus the wait.
func TestHedgingLatencyOfAFailureOutwaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n := calls.Add(1)
			d, status := 5*time.Millisecond, http.StatusOK
			switch n {
			case minHedgeSamples + 1:
				d, status = 8*time.Millisecond, http.StatusServiceUnavailable // the attempt
			case minHedgeSamples + 2:
				d = time.Hour // its copy, which hangs
			}
			timer := time.NewTimer(d)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: status, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{}), WithMaxPeek(0), fastRetries)
		for range minHedgeSamples + 1 {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		synctest.Wait()
		if n := calls.Load(); n != minHedgeSamples+3 {
			t.Fatalf("%d requests, want %d: the warm-up, the attempt, its copy and the retry", n, minHedgeSamples+3)
		}
		hb := tr.budgets.get(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if got, want := func() time.Duration { d, _ := hb.latencies().quantile(0.999); return d }(), upperBound(bucketOf(8*time.Millisecond)); got > want {
			t.Errorf("slowest latency recorded = %v, want at most %v: the attempt's answer came at 8ms", got, want)
		}
	})
}
