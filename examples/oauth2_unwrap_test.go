package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
)

// TestOAuth2ClientUnwrapsToItsTransport: the client Transport of
// NewRefreshTokenClient, which sets the token, gives the API's
// resilient.Transport under it through Unwrap, as the Discord session's
// does, so that a user reaches its HostState, ResetHost and MaxElapsed.
func TestOAuth2ClientUnwrapsToItsTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, srv.Base(), resilient.WithMaxElapsed(time.Minute))
		u, ok := client.Transport.(interface{ Unwrap() http.RoundTripper })
		if !ok {
			t.Fatalf("client.Transport (%T) has no Unwrap() http.RoundTripper, want one that returns the API's *resilient.Transport", client.Transport)
		}
		rt, ok := u.Unwrap().(*resilient.Transport)
		if !ok {
			t.Fatalf("Unwrap() = %T, want *resilient.Transport", u.Unwrap())
		}
		resp, err := client.Get(srv.URL + "/v1/me")
		if err != nil {
			t.Fatalf("Get: %v, want an answer", err)
		}
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/me", nil)
		st, err := rt.HostState(req)
		if err != nil || st.Breaker != resilient.BreakerClosed {
			t.Errorf("HostState(%s) = %v, %v; want a closed breaker", req.URL.Host, st.Breaker, err)
		}
		if got, want := rt.MaxElapsed(), time.Minute; got != want {
			t.Errorf("Unwrap().MaxElapsed() = %v, want %v", got, want)
		}
	})
}
