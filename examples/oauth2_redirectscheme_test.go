package examples

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestOAuth2TokenNotSentOnADowngrade: a redirect from https://api.example
// to http://api.example, the same host, leaves the first request's origin
// (its scheme), and goes without the token: sent in the clear, it would
// be read by anyone on the path.
func TestOAuth2TokenNotSentOnADowngrade(t *testing.T) {
	auth := map[string]string{}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		auth[req.URL.String()] = req.Header.Get("Authorization")
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})
	conf := &oauth2.Config{ClientID: "app", Endpoint: oauth2.Endpoint{TokenURL: "https://auth.example/token"}}
	tok := &oauth2.Token{AccessToken: "at-secret", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	client := NewRefreshTokenClient(context.Background(), conf, tok, base)

	first, _ := http.NewRequest(http.MethodGet, "https://api.example/v1/me", nil)
	hop, _ := http.NewRequest(http.MethodGet, "http://api.example/v1/me", nil)
	hop.Response = &http.Response{StatusCode: http.StatusFound, Request: first}
	for _, req := range []*http.Request{first, hop} {
		resp, err := client.Transport.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", req.URL, err)
		}
		resp.Body.Close()
	}
	if got := auth["https://api.example/v1/me"]; got != "Bearer at-secret" {
		t.Errorf("the first request: Authorization %q, want the token", got)
	}
	if got := auth["http://api.example/v1/me"]; got != "" {
		t.Errorf("the redirect to http: Authorization %q, want none", got)
	}
}
