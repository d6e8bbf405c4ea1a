package examples

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
)

// slowRefreshServer is an authorization server that rotates refresh tokens
// (each is good once) and answers a refresh 3 s after it processed it, and
// an API (GET /v1/me) on one host.
func slowRefreshServer() http.Handler {
	var n int
	current := "rt-1"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("refresh_token") != current {
			jsonAnswer(w, http.StatusBadRequest, `{"error":"invalid_grant"}`)
			return
		}
		current = "rt-" + strconv.Itoa(n+1)
		time.Sleep(3 * time.Second)
		jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"`+current+`"}`)
	})
	mux.HandleFunc("GET /v1/me", apiOK)
	return mux
}

// TestOAuth2RefreshOutlivesTheCall: a refresh that the server processed
// (rotating the refresh token) and answered after the deadline of the
// call that asked for it is kept: the next call uses its token, with no
// further token request, as through an oauth2.Transport, whose refresh
// runs to its end whatever the call's context. Until 2026-12-05 the
// recipe cancelled the refresh with the call and kept the spent refresh
// token: the next call's refresh was refused with invalid_grant, and the
// user had to authorize again.
func TestOAuth2RefreshOutlivesTheCall(t *testing.T) {
	for _, setup := range []string{"recipe", "oauth2.Transport"} {
		t.Run(setup, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, slowRefreshServer())
				conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
				tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
				client := NewRefreshTokenClient(context.Background(), conf, tok, srv.Base())
				if setup != "recipe" {
					ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: resilient.New(srv.Base())})
					client = &http.Client{Transport: &oauth2.Transport{Source: conf.TokenSource(ctx, tok), Base: resilient.New(srv.Base())}}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded past its deadline")
				}
				time.Sleep(time.Minute)
				resp, err := client.Get(srv.URL + "/v1/me")
				if err != nil {
					t.Fatalf("the next call: %v (%d token requests); want the refreshed token used", err, srv.Hits("/token"))
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || srv.Hits("/token") != 1 {
					t.Errorf("the next call: %d, after %d token requests; want 200 after 1", resp.StatusCode, srv.Hits("/token"))
				}
			})
		})
	}
}
