package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestCallMaxElapsedBelowFloorIsSpent: a budget below its floor (1ms),
// given for the call or left of it by WithMaxElapsedSpent, is one the
// call fails with at once, before its first attempt: CallMaxElapsed
// reports it as spent (a nanosecond), as it does a budget that
// WithMaxElapsedSpent left nothing of, so that a layer above the
// Transport that bounds its wait by it does not wait for a call that will
// not be sent. Until 2026-12-07 it reported the 0.5ms.
func TestCallMaxElapsedBelowFloorIsSpent(t *testing.T) {
	bg := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"given for the call", WithCallOptions(bg, WithMaxElapsed(500*time.Microsecond))},
		{"left by WithMaxElapsedSpent", WithCallOptions(bg, WithMaxElapsedSpent(DefaultMaxElapsed-500*time.Microsecond))},
	} {
		sent := 0
		tr := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent++
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		}))
		req, _ := http.NewRequestWithContext(tc.ctx, http.MethodGet, "http://api.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if sent != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: the call = %v, %d sent; want it to fail at once, unsent", tc.name, err, sent)
		}
		if got := tr.CallMaxElapsed(tc.ctx); got != time.Nanosecond {
			t.Errorf("%s: CallMaxElapsed = %v, want %v: the call fails at once", tc.name, got, time.Nanosecond)
		}
	}
}
