package resilient

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestBufferedResponseContextBlindBodyCutAtTheDeadline: a success's body
// read within the attempt (WithBufferedResponse) is cut at the attempt's
// deadline even when the base's body ignores its request's context (an
// in-memory or hand-made RoundTripper), as the peek and the drain are:
// the attempt fails as cut, and is retried. Such a body that stalled held
// the call, and its WithMaxInFlight slot, for ever, far past the attempt
// timeout that "bounds each attempt until its response is handed over";
// one that dripped was read a byte each half second up to max; and one
// whose base answered past the deadline was read all the same.
func TestBufferedResponseContextBlindBodyCutAtTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		drip bool
		late time.Duration // the base answers after this, whatever its context says
	}{
		{"stalls", false, 0},
		{"drips", true, 0},
		{"stalls after a late answer", false, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := &contextBlindBody{drip: tc.drip, closed: make(chan struct{})}
				start := time.Now()
				resp, err := contextBlindCall(t, context.Background(), body, 200, "application/json", tc.late,
					WithBufferedResponse(1<<20), WithAttemptTimeout(time.Second))
				took := time.Since(start)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("RoundTrip = %v, %v; want the retry's 200", resp, err)
				} else {
					resp.Body.Close()
				}
				if bound := max(tc.late, time.Second) + closeGrace + time.Second; took > bound {
					t.Errorf("RoundTrip took %v reading the first 200's body, want at most %v (attempt timeout 1s)", took, bound)
				}
				if n := body.numCloses(); n != 1 {
					t.Errorf("first 200's body closed %d times, want once", n)
				}
			})
		})
	}
}
