package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestOAuth2CallsBehindAFetchShareItsToken: a call that waited for another
// call's token request (a refresh, or a client-credentials request) takes
// the token it brought, and makes no token request of its own: one token
// request for both calls. A second refresh would spend, at a server that
// rotates refresh tokens, the refresh token the first just brought.
func TestOAuth2CallsBehindAFetchShareItsToken(t *testing.T) {
	for _, flow := range []string{"credentials", "refresh"} {
		t.Run(flow, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mux := http.NewServeMux()
				mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(time.Second) // the second call comes meanwhile
					jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}`)
				})
				mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
					jsonAnswer(w, http.StatusOK, `{"id":"me"}`)
				})
				srv := newServer(t, mux)
				var client *http.Client
				if flow == "credentials" {
					conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
					client = NewClientCredentialsClient(context.Background(), conf, srv.Base())
				} else {
					client = expiredRefreshClient(srv)
				}
				first := callAhead(client, srv.URL+"/v1/me", true)
				resp, err := client.Get(srv.URL + "/v1/me")
				if err != nil {
					t.Fatalf("the call behind the first: %v", err)
				}
				resp.Body.Close()
				<-first
				if got := srv.Hits("/token"); got != 1 {
					t.Errorf("%d token requests for two calls, want 1", got)
				}
				if got := srv.Hits("/v1/me"); got != 2 {
					t.Errorf("%d API requests, want 2", got)
				}
			})
		})
	}
}
