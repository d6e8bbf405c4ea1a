package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestDrainTimeInTheAttempt: the drain of a response retried past, which
// reads a body that drips for up to 2s after the attempt's envelope was
// peeked, is time of that attempt: the Attempt's Duration and its Delay
// account for the whole call, as a trace or a log of its attempts
// (TestBoundsProperty's "no time spent outside them") tells where the time
// went. The drain's 2s were in no Attempt, nor in the Report's Waited.
func TestDrainTimeInTheAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: newDrippingBody(req.Context()), Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
		})
		var attempts []Attempt
		tr := New(base, WithBackoff(100*time.Millisecond, 100*time.Millisecond), WithoutBreaker(),
			WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		var r Report
		req := newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "http://api.test/x", nil)
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip = %v, %v; want the retry's 200", resp, err)
		}
		resp.Body.Close()
		var accounted time.Duration
		for _, a := range attempts {
			accounted += a.Duration + a.Delay
		}
		if len(attempts) != 2 || accounted != took {
			t.Fatalf("the call took %v; its %d attempts account for %v (%+v)", took, len(attempts), accounted, attempts)
		}
	})
}
