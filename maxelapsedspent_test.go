package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxElapsedSpentCountsTheTimeBefore: WithMaxElapsedSpent(d) given per
// call leaves the call what d left of its budget, whichever set it: the
// Transport, or its caller with WithCallOptions before it, raised or
// lowered; a call whose budget d spent fails at once with its timeout,
// and one without a budget stays without one (here cut by its context).
// A layer above the Transport that spent d of the call's time (a wait for
// a token) so keeps the call within its caller's budget in all, where
// WithMaxElapsed(what it left of the Transport's) would replace a budget
// the caller set.
func TestMaxElapsedSpentCountsTheTimeBefore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tr     []Option // the Transport's
		caller []Option // the caller's, per call, before the layer's
		want   time.Duration
	}{
		{"the Transport's budget", nil, nil, 4 * time.Minute},
		{"the caller's, raised", nil, []Option{WithMaxElapsed(time.Hour)}, 59 * time.Minute},
		{"the caller's, lowered", nil, []Option{WithMaxElapsed(2 * time.Minute)}, time.Minute},
		{"the caller's, spent", nil, []Option{WithMaxElapsed(10 * time.Second)}, 0}, // at once, before its first attempt
		{"no budget", []Option{WithMaxElapsed(0)}, nil, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sent int
				hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					sent++
					<-r.Context().Done()
					return nil, r.Context().Err()
				})
				tr := New(hang, append([]Option{WithoutBreaker(), WithMaxRetries(0)}, tc.tr...)...)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
				defer cancel()
				if tc.caller != nil {
					ctx = WithCallOptions(ctx, tc.caller...)
				}
				ctx = WithCallOptions(ctx, WithMaxElapsedSpent(time.Minute))
				began := time.Now()
				resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while its host hangs, want its budget's timeout")
				}
				if took := time.Since(began); took != tc.want {
					t.Errorf("the call failed after %v (%v, %d attempt sent), want %v", took, err, sent, tc.want)
				}
			})
		})
	}
	mustPanic(t, "WithMaxElapsedSpent(-1s) accepted a negative time", func() { WithMaxElapsedSpent(-time.Second) })
}
