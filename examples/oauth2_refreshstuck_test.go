package examples

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// hangingTokenServer is an authorization server whose token endpoint
// answers nothing (until its caller gives up, or quit is closed) while
// down() holds, then answers every refresh, and an API (GET /v1/me) on one
// host.
func hangingTokenServer(down func() bool, quit <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if down() {
			select {
			case <-r.Context().Done():
			case <-quit:
			}
			return
		}
		tokenOK(w)
	})
	mux.HandleFunc("GET /v1/me", apiOK)
	return mux
}

// TestOAuth2StuckRefreshBoundsTheNextCall: a refresh whose caller gave up
// and whose token endpoint hangs holds a later call no longer than that
// call's budget (resilient's, 5 minutes by default), and the next call
// after that starts a refresh of its own. Until 2026-12-06 the refresh, made
// under the client's context alone, ran resilient's budget twice (oauth2's
// auto-detection tries the header, then the body), and a later call
// without a deadline waited for it and then for a refresh of its own: 19
// minutes.
func TestOAuth2StuckRefreshBoundsTheNextCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		down := func() bool { return time.Since(start) < time.Hour }
		quit := make(chan struct{})
		srv := newServer(t, hangingTokenServer(down, quit))
		t.Cleanup(func() { close(quit) })                                                                                        // before the server's Close, which waits for its handlers
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token"}} // AuthStyle auto-detected
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: start.Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, srv.Base())

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("the call that started the refresh succeeded, want its deadline's error")
		}

		time.Sleep(time.Minute)
		began := time.Now()
		resp, err := client.Get(srv.URL + "/v1/me") // no deadline: the Transport's budget bounds it
		if err == nil {
			resp.Body.Close()
			t.Fatal("a call while the token endpoint hangs succeeded, want an error")
		}
		if waited := time.Since(began); waited > resilient.DefaultMaxElapsed {
			t.Errorf("the next call waited %v, want at most its budget %v", waited, resilient.DefaultMaxElapsed)
		}

		time.Sleep(time.Hour) // the token endpoint is back
		resp, err = client.Get(srv.URL + "/v1/me")
		if err != nil {
			t.Fatalf("the call after the endpoint is back: %v, want a refresh and a 200", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the call after the endpoint is back = %d, want 200", resp.StatusCode)
		}
	})
}

// TestOAuth2StuckRefreshIsAbandoned: a refresh stuck in a base that
// ignores its context (it never returns) is abandoned after the token
// Transport's budget: the token lock is released, and a call made after
// that starts a new refresh and gets its answer. Until 2026-12-06 the stuck
// refresh held the lock for as long as it hung, and every later call
// waited for it until its own context ended.
func TestOAuth2StuckRefreshIsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		release := make(chan struct{})
		defer close(release)
		var sent atomic.Bool
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/token" && !sent.Swap(true) {
				<-release // deaf to req's context
			}
			return srv.Base().RoundTrip(req)
		})
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, base)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("the call that started the refresh succeeded, want its deadline's error")
		}

		time.Sleep(resilient.DefaultMaxElapsed + time.Minute)
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a call after the stuck refresh's bound: %v, want a new refresh and a 200", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || srv.Hits("/token") != 1 {
			t.Errorf("a call after the stuck refresh's bound = %d after %d token requests, want 200 after 1", resp.StatusCode, srv.Hits("/token"))
		}
	})
}

// TestOAuth2StuckTokenEndpointBoundsAClientCredentialsCall: a call without
// a deadline whose client-credentials token request hangs fails after its
// budget (resilient's, 5 minutes by default). Until 2026-12-06 its fetch
// ran resilient's budget twice (oauth2's auto-detection tries the header,
// then the body): 10 minutes.
func TestOAuth2StuckTokenEndpointBoundsAClientCredentialsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quit := make(chan struct{})
		srv := newServer(t, hangingTokenServer(func() bool { return true }, quit))
		t.Cleanup(func() { close(quit) })
		conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token"} // AuthStyle auto-detected
		client := NewClientCredentialsClient(context.Background(), conf, srv.Base())
		began := time.Now()
		resp, err := client.Get(srv.URL + "/v1/me")
		if err == nil {
			resp.Body.Close()
			t.Fatal("a call while the token endpoint hangs succeeded, want an error")
		}
		if waited := time.Since(began); waited > resilient.DefaultMaxElapsed {
			t.Errorf("the call waited %v, want at most its budget %v", waited, resilient.DefaultMaxElapsed)
		}
	})
}
