package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxElapsedSpentCutCountsAgainstTheHost: an attempt cut by what
// WithMaxElapsedSpent left of the Transport's budget (a token's wait
// before it) is cut by the Transport's budget, as a later attempt of a
// call is: a hanging host is counted by its breaker, not excused as a
// limit the caller set. Until 2026-12-06 such a cut counted as the
// caller's choice: calls that waited for their token never opened the
// breaker of a host that hangs, and their error named a limit set for the
// call.
func TestMaxElapsedSpentCutCountsAgainstTheHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		tr := New(hang, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		ctx := WithCallOptions(context.Background(), WithMaxElapsedSpent(time.Minute))
		resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/v1/me", nil))
		if err == nil {
			resp.Body.Close()
			t.Fatal("the call succeeded while its host hangs")
		}
		if st := tr.BreakerState("http://api.test"); st != BreakerOpen {
			t.Errorf("after an attempt the Transport's budget cut (%v): breaker %v, want %v", err, st, BreakerOpen)
		}
	})
}
