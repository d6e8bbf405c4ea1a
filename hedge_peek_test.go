package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfAnAttemptAnswered: the hedging delay is for an
// attempt whose host has not answered (Hedging.Delay: the time to response
// headers). An attempt answered with an error status before the delay,
// whose body the Transport is still reading for its envelope (a body that
// trickles or stalls, up to 2 s), has its answer: no copy is sent then. A
// plain client sends one request for a 404, and a failure gets its retry
// after the backoff, not a copy at once (TestHedgingNoCopyAfterTheAttemptFailed).
func TestHedgingNoCopyOfAnAttemptAnswered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		want   int // requests
	}{
		{"a 404", http.StatusNotFound, 1},
		{"a 503, retried", http.StatusServiceUnavailable, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						// Headers at 10ms; the envelope's first bytes,
						// then nothing more.
						time.Sleep(10 * time.Millisecond)
						return &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}},
							Body: newStallBody(req.Context(), `{"error":{"code":"x",`), ContentLength: -1, Request: req}, nil
					}
					time.Sleep(10 * time.Millisecond)
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithMaxRetries(1), WithBackoff(time.Second, time.Second),
					WithHedging(Hedging{Delay: 50 * time.Millisecond}))
				var r Report
				resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				if n := int(calls.Load()); n != tc.want || r.Hedges != 0 {
					t.Errorf("%d requests, %d hedges (status %d); want %d and none: the attempt was answered at 10ms, before the hedging delay", n, r.Hedges, resp.StatusCode, tc.want)
				}
			})
		})
	}
}
