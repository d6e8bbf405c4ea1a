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

// slowTokenHangingAPIServer is an authorization server whose token
// endpoint answers each token request after slow, and an API (GET /v1/me)
// that answers nothing until its caller gives up, or quit is closed.
func slowTokenHangingAPIServer(slow time.Duration, quit <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slow):
			jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}`)
		case <-r.Context().Done():
		case <-quit:
		}
	})
	mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-quit:
		}
	})
	return mux
}

// TestOAuth2TokenWaitAndCallShareTheBudget: a call without a deadline
// whose token takes 4 minutes to come (its own token request or refresh,
// or another call's it waits for) and whose API call then hangs fails
// within its budget (resilient's, 5 minutes by default) in all, with an
// error wrapping context.DeadlineExceeded: the wait for its token and its
// call through the API's Transport share that budget, as a bound must.
// Until 2026-12-06 the call through the API's Transport got a whole budget
// of its own after the wait: 9 minutes.
func TestOAuth2TokenWaitAndCallShareTheBudget(t *testing.T) {
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
				began := time.Now()
				resp, err := client.Get(srv.URL + "/v1/me")
				took := time.Since(began)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while the API hangs, want an error")
				}
				if took > resilient.DefaultMaxElapsed || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the call = %v after %v, want context.DeadlineExceeded within its budget %v", err, took, resilient.DefaultMaxElapsed)
				}
				<-first
			})
		})
	}
}
