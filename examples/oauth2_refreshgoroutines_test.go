package examples

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
)

// TestOAuth2AbandonedRefreshHoldsOneGoroutine: a refresh abandoned in a
// base that never returns (deaf to its context) holds one goroutine, the
// one stuck in that base, whose late answer, if it ever comes, is kept or
// dropped there (see keepLate): the goroutine that ran the refresh
// returns at the abandonment. Until 2026-12-08 that one waited for the
// base too, to hand its answer to keepLate: two goroutines for every
// abandoned refresh, as long as the base holds them.
func TestOAuth2AbandonedRefreshHoldsOneGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		release := make(chan struct{})
		defer close(release)
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/token" {
				<-release // deaf to req's context, until the test ends
			}
			return srv.Base().RoundTrip(req)
		})
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, base)
		abandon := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("a call whose refresh is stuck succeeded, want its deadline's error")
			}
			time.Sleep(resilient.DefaultMaxElapsed + 10*time.Second) // its refresh is abandoned
			synctest.Wait()
		}
		abandon()
		before := runtime.NumGoroutine()
		const refreshes = 3
		for range refreshes {
			abandon()
		}
		if got := runtime.NumGoroutine() - before; got > refreshes {
			t.Errorf("goroutines after %d more abandoned refreshes = %d more, want at most %d (one stuck in the base each)", refreshes, got, refreshes)
		}
	})
}
