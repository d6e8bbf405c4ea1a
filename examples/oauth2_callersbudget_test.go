package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestOAuth2WaitCountsAgainstTheCallersBudget: a call whose caller set its
// budget (resilient.WithCallOptions WithMaxElapsed), lowered or raised, and
// that waited a minute for a refresh before its API call hangs, fails when
// that budget is spent in all, the wait counted: its call through the
// API's Transport has what the wait left of the caller's budget, not of
// the Transport's. Until 2026-12-06 WithMaxElapsed(what the wait left of
// the Transport's 5 minutes) replaced the caller's budget: both calls
// failed after 5 minutes, the one given 2 minutes and the one given an
// hour (an upload's, as the README advises).
func TestOAuth2WaitCountsAgainstTheCallersBudget(t *testing.T) {
	for _, budget := range []time.Duration{2 * time.Minute, time.Hour} {
		t.Run(budget.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				quit := make(chan struct{})
				srv := newServer(t, slowTokenHangingAPIServer(time.Minute, quit))
				t.Cleanup(func() { close(quit) })
				client := expiredRefreshClient(srv)
				ctx := resilient.WithCallOptions(context.Background(), resilient.WithMaxElapsed(budget))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				began := time.Now()
				resp, err := client.Do(req)
				took := time.Since(began)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while the API hangs, want an error")
				}
				if took != budget {
					t.Errorf("the call = %v after %v, want it to fail when the caller's budget of %v is spent, the token's minute counted", err, took, budget)
				}
			})
		})
	}
}
