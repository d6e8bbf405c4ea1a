package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestOAuth2TokenWaitEndsWithTheCallersLoweredBudget: a call whose caller
// lowered its budget to 2 minutes (resilient.WithCallOptions
// WithMaxElapsed), and whose token takes 4 minutes to come (its own token
// request or refresh, or another call's it waits for), fails when those 2
// minutes are spent, with an error wrapping context.DeadlineExceeded: the
// wait for its token is bounded by the call's budget, as the caller set
// it, not by the API Transport's 5 minutes. Until 2026-12-06 the wait ran
// to the token's 4 minutes (the Transport's budget bounded it), and the
// call then failed at once, its budget spent twice over.
func TestOAuth2TokenWaitEndsWithTheCallersLoweredBudget(t *testing.T) {
	const budget = 2 * time.Minute
	for _, tc := range []struct {
		name   string
		flow   string // "credentials" or "refresh"
		behind bool   // whether the call waits for another call's token request
	}{
		{"client credentials, its own token request", "credentials", false},
		{"client credentials, behind another call's", "credentials", true},
		{"refresh, its own", "refresh", false},
		{"refresh, behind another call's", "refresh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				quit := make(chan struct{})
				srv := newServer(t, slowTokenHangingAPIServer(4*time.Minute, quit))
				t.Cleanup(func() { close(quit) })
				var client *http.Client
				if tc.flow == "credentials" {
					conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
					client = NewClientCredentialsClient(context.Background(), conf, srv.Base())
				} else {
					client = expiredRefreshClient(srv)
				}
				first := callAhead(client, srv.URL+"/v1/me", tc.behind)
				ctx := resilient.WithCallOptions(context.Background(), resilient.WithMaxElapsed(budget))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				began := time.Now()
				resp, err := client.Do(req)
				took := time.Since(began)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while the API hangs, want an error")
				}
				if took != budget || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the call = %v after %v, want context.DeadlineExceeded when the caller's budget of %v is spent", err, took, budget)
				}
				time.Sleep(3 * time.Minute) // a refresh outlives the call: its token comes at 4 minutes
				<-first
			})
		})
	}
}
