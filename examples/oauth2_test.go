package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauthServer is an authorization server (POST /token) and an API
// (GET /v1/me) on one host: token answers the n-th token request (from 1),
// api every API call.
func oauthServer(token func(w http.ResponseWriter, n int), api http.HandlerFunc) http.Handler {
	var n int
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		n++
		token(w, n)
	})
	mux.Handle("GET /v1/me", api)
	return mux
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func tokenOK(w http.ResponseWriter) {
	jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
}

var (
	tokenRefused = func(w http.ResponseWriter, _ int) {
		jsonAnswer(w, http.StatusUnauthorized, `{"error":"invalid_client","error_description":"Client authentication failed"}`)
	}
	tokenFlakyOnce = func(w http.ResponseWriter, n int) {
		if n == 1 {
			jsonAnswer(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
			return
		}
		tokenOK(w)
	}
	tokenAlwaysOK = func(w http.ResponseWriter, _ int) { tokenOK(w) }
	apiOK         = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			jsonAnswer(w, http.StatusUnauthorized, `{"error":{"code":"unauthorized","message":"no token"}}`)
			return
		}
		jsonAnswer(w, http.StatusOK, `{"id":"me"}`)
	}
	apiDown = func(w http.ResponseWriter, _ *http.Request) {
		jsonAnswer(w, http.StatusInternalServerError, `{"error":{"code":"internal","message":"down"}}`)
	}
)

// oauthSetup builds the client of one arrangement from the config and the
// server's transport.
type oauthSetup func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client

var (
	// oauthOutside is the README's pattern applied to the client oauth2
	// returns: resilient.New wraps the SDK's transport.
	oauthOutside oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		c := conf.Client(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}))
		c.Transport = resilient.New(c.Transport)
		return c
	}
	// oauthBaseOnly puts resilient under the oauth2.Transport but leaves
	// the token requests on a plain client.
	oauthBaseOnly oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		ts := conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}))
		return &http.Client{Transport: &oauth2.Transport{Source: ts, Base: resilient.New(base)}}
	}
	oauthRecipe oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		return NewClientCredentialsClient(context.Background(), conf, base)
	}
)

// oauthCall makes one API call with the client setup builds against a
// server of token and api, and returns the token requests and API attempts
// the server saw, and the call's final status (0 for an error).
func oauthCall(t *testing.T, setup oauthSetup, token func(http.ResponseWriter, int), api http.HandlerFunc) (tokens, calls, status int) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPipeServer(t, "auth.test", oauthServer(token, api))
		conf := &clientcredentials.Config{
			ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token",
			AuthStyle: oauth2.AuthStyleInHeader, // the default, auto-detection, sends a refused secret twice
		}
		resp, err := setup(conf, srv.Transport()).Get(srv.URL + "/v1/me")
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		tokens, calls = srv.Hits("/token"), srv.Hits("/v1/me")
	})
	return tokens, calls, status
}

// TestOAuth2 measures the token requests and API attempts of one call with
// resilient around the client oauth2 returns (before) and with
// NewClientCredentialsClient (after).
func TestOAuth2(t *testing.T) {
	t.Run("TokenRefused", func(t *testing.T) {
		// A wrong secret is permanent; outside the oauth2.Transport,
		// resilient sees only an error and retries it.
		before, _, bs := oauthCall(t, oauthOutside, tokenRefused, apiOK)
		after, _, as := oauthCall(t, oauthRecipe, tokenRefused, apiOK)
		if before != 6 || after != 1 || bs != 0 || as != 0 {
			t.Errorf("token requests per call: before %d (status %d), recipe %d (status %d); want 6 and 1, both failing", before, bs, after, as)
		}
		checkDocRow(t, "oauth2", "token endpoint: 401 `invalid_client` (token requests)", before, after)
	})
	t.Run("TokenFlakyOnce", func(t *testing.T) {
		before, _, bs := oauthCall(t, oauthOutside, tokenFlakyOnce, apiOK)
		after, _, as := oauthCall(t, oauthRecipe, tokenFlakyOnce, apiOK)
		baseOnly, _, bos := oauthCall(t, oauthBaseOnly, tokenFlakyOnce, apiOK)
		if before != 2 || after != 2 || bs != http.StatusOK || as != http.StatusOK {
			t.Errorf("token requests per call: before %d (status %d), recipe %d (status %d); want 2 and 2, both succeeding", before, bs, after, as)
		}
		// resilient only as the Base: the token request is not retried.
		if baseOnly != 1 || bos != 0 {
			t.Errorf("resilient as Base only: %d token requests (status %d), want 1 and a failed call", baseOnly, bos)
		}
		checkDocRow(t, "oauth2", "token endpoint: one 503 (token requests)", before, after)
	})
	t.Run("APIDown", func(t *testing.T) {
		bt, before, bs := oauthCall(t, oauthOutside, tokenAlwaysOK, apiDown)
		at, after, as := oauthCall(t, oauthRecipe, tokenAlwaysOK, apiDown)
		if before != 6 || after != 6 || bt != 1 || at != 1 || bs != 500 || as != 500 {
			t.Errorf("API attempts per call: before %d (%d tokens, status %d), recipe %d (%d tokens, status %d); want 6 with 1 token and a 500, both",
				before, bt, bs, after, at, as)
		}
		checkDocRow(t, "oauth2", "API: 500 on every attempt", before, after)
	})
}
