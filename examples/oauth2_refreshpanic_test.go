package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"
)

// TestOAuth2RefreshPanicGoesToTheCaller: a refresh that panics (the
// caller's base RoundTripper below the token requests' resilient.Transport,
// which hands a panic on to its caller) panics in the call that started
// it, as a plain oauth2 client's does, and releases the token lock: the
// next call refreshes again, and gets its answer. The refresh runs on a
// goroutine of its own (see TestOAuth2RefreshOutlivesTheCall): a panic
// there crashed the process.
func TestOAuth2RefreshPanicGoesToTheCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		panicking := true
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/token" && panicking {
				panicking = false
				panic("the token request's base exploded")
			}
			return srv.Base().RoundTrip(req)
		})
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, base)
		var got any
		func() {
			defer func() { got = recover() }()
			if resp, err := client.Get(srv.URL + "/v1/me"); err == nil {
				resp.Body.Close()
			}
		}()
		if got != "the token request's base exploded" {
			t.Errorf("the call that started the refresh recovered %v, want the refresh's panic", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("the next call: %v; want the token lock released and a refresh", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || srv.Hits("/token") != 1 {
			t.Errorf("the next call: %d, after %d token requests; want 200 after 1", resp.StatusCode, srv.Hits("/token"))
		}
	})
}
