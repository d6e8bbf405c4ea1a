package examples

import (
	"context"
	"net/http"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// expiredRefreshClient returns the recipe's refresh-token client of the
// authorization server srv (its /token endpoint), over srv's Transport,
// with a token that expired an hour ago: its first call refreshes it.
func expiredRefreshClient(srv *server) *http.Client {
	conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
	return NewRefreshTokenClient(context.Background(), conf, tok, srv.Base())
}

// callAhead, when ahead, starts a GET of url by client on a goroutine of
// its own and waits until it blocks, its token request holding the token
// lock, so that the test's next call waits behind it. The channel it
// returns is closed once that call ends (at once when !ahead). It must be
// called inside the bubble of the test.
func callAhead(client *http.Client, url string, ahead bool) <-chan struct{} {
	done := make(chan struct{})
	if !ahead {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
		}
	}()
	synctest.Wait() // its token request holds the token lock
	return done
}
