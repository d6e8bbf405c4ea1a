package examples

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestOAuth2TokenStaysWithItsHost follows the API's redirects: to another
// host (which a server, or an open redirect, on the API's host may name),
// on to a second path of that host, to another port of the API's host, and
// within the API's origin, its default port spelled or not, with the
// client of each recipe: client credentials and refresh tokens (which
// docs/sdks.md advised to send through an oauth2.Transport, which set the
// token on every redirect's request). The token goes only where the first request
// went, as net/http itself sends the caller's Authorization header on a
// redirect: a redirect's request that left that origin carries none, on
// every hop after it too, where the recipe set the token on every request
// it saw. A redirect whose response names no request (a base that builds
// its responses without one) cannot be traced to the first request, and
// is taken for one that left it.
func TestOAuth2TokenStaysWithItsHost(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		untraced   bool   // the base answers without the response's Request
		want       []bool // whether each redirect's request carried the token
	}{
		{"OtherHost", "/v1/away", false, []bool{false}},
		{"OtherHostTwice", "/v1/awaytwice", false, []bool{false, false}},
		{"OtherPort", "/v1/otherport", false, []bool{false}},
		{"SameOrigin", "/v1/here", false, []bool{true}},
		{"SameOriginDefaultPort", "/v1/defaultport", false, []bool{true}},
		{"SameOriginUntraced", "/v1/here", true, []bool{false}},
	} {
		for _, refresh := range []bool{false, true} {
			t.Run(map[bool]string{false: "ClientCredentials", true: "RefreshToken"}[refresh]+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var carried []bool // whether each redirect's request carried the token
					landed := func(w http.ResponseWriter, r *http.Request) {
						carried = append(carried, r.Header.Get("Authorization") == "Bearer at-1")
						jsonAnswer(w, http.StatusOK, `{"id":"me"}`)
					}
					hop := func(w http.ResponseWriter, r *http.Request) {
						carried = append(carried, r.Header.Get("Authorization") == "Bearer at-1")
						http.Redirect(w, r, "/v1/me", http.StatusFound)
					}
					otherMux := http.NewServeMux()
					otherMux.HandleFunc("GET /v1/me", landed)
					otherMux.HandleFunc("GET /v1/hop", hop)
					other := startServer(t, resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithHandler(otherMux)))
					apiMux := http.NewServeMux()
					apiMux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) { tokenOK(w) })
					apiMux.HandleFunc("GET /v1/me", landed)
					redirect := func(path string, to func(r *http.Request) string) {
						apiMux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to(r), http.StatusFound) })
					}
					redirect("/v1/away", func(*http.Request) string { return other.URL + "/v1/me" })
					redirect("/v1/awaytwice", func(*http.Request) string { return other.URL + "/v1/hop" })
					redirect("/v1/otherport", func(r *http.Request) string { return "http://" + r.Host + ":8443/v1/me" }) // the same server: its dial takes any address
					redirect("/v1/defaultport", func(r *http.Request) string { return "http://" + r.Host + ":80/v1/me" }) // the first request's origin, its port spelled
					redirect("/v1/here", func(*http.Request) string { return "/v1/me" })
					api := newServer(t, apiMux)
					if api.URL == other.URL {
						t.Fatalf("both servers are at %s", api.URL)
					}
					base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
						to := api.Base()
						if "http://"+r.URL.Hostname() == other.URL {
							to = other.Base()
						}
						resp, err := to.RoundTrip(r)
						if err == nil && tc.untraced {
							resp.Request = nil
						}
						return resp, err
					})
					var client *http.Client
					if refresh {
						conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: api.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
						tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
						client = NewRefreshTokenClient(context.Background(), conf, tok, base)
					} else {
						conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: api.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
						client = NewClientCredentialsClient(context.Background(), conf, base)
					}
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, api.URL+tc.path, nil)
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d, want 200", resp.StatusCode)
					}
					if !slices.Equal(carried, tc.want) {
						t.Errorf("the redirects' requests carried the token: %v, want %v", carried, tc.want)
					}
				})
			})
		}
	}
}
