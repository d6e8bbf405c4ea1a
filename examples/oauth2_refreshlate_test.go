package examples

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
)

// TestOAuth2AbandonedRefreshKeepsItsLateToken: a refresh that the server
// processed (rotating the refresh token) but whose answer a base deaf to
// its context delivers only after the refresh was abandoned still brings
// its token, when no other refresh has brought one since: a call made
// between the abandonment and the answer, whose refresh sends the spent
// refresh token, is refused with invalid_grant, and the call after the
// answer uses the rotated token, with no further token request. Until
// 2026-12-07 the late answer was dropped with the abandoned refresh: the
// client kept the spent refresh token, every later refresh was refused
// with invalid_grant, and the user had to authorize again.
func TestOAuth2AbandonedRefreshKeepsItsLateToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		release := make(chan struct{})
		var held atomic.Bool
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path != "/token" || held.Swap(true) {
				return srv.Base().RoundTrip(req)
			}
			// The server processes the refresh; its answer reaches the
			// client only once release is closed, whatever req's context.
			resp, err := srv.Base().RoundTrip(req.WithContext(context.WithoutCancel(req.Context())))
			if err != nil {
				return nil, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			<-release
			return resp, nil
		})
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, base)
		call := func(d time.Duration) (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}

		if _, err := call(2 * time.Second); err == nil {
			t.Fatal("the call that started the refresh succeeded, want its deadline's error")
		}
		time.Sleep(resilient.DefaultMaxElapsed + 10*time.Second) // the refresh is abandoned
		if _, err := call(time.Minute); err == nil {
			t.Fatal("a call between the abandonment and the late answer succeeded, want invalid_grant (its refresh sent the spent refresh token)")
		}
		close(release) // the abandoned refresh's answer comes
		time.Sleep(time.Minute)
		code, err := call(time.Minute)
		if err != nil || code != http.StatusOK || srv.Hits("/token") != 2 {
			t.Errorf("the call after the late answer = %d, %v, after %d token requests; want 200 with the rotated token, after 2", code, err, srv.Hits("/token"))
		}
	})
}

// TestOAuth2StuckRefreshAbandonedWithoutABudget: with
// resilient.WithMaxElapsed(0) (no budget for the calls), a refresh stuck
// in a base that ignores its context is still abandoned after
// resilient.DefaultMaxElapsed, as the recipe's doc says: a call made
// after that starts a refresh of its own and gets its answer.
func TestOAuth2StuckRefreshAbandonedWithoutABudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, slowRefreshServer())
		release := make(chan struct{})
		defer close(release)
		var held atomic.Bool
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Path == "/token" && !held.Swap(true) {
				<-release // deaf to req's context
			}
			return srv.Base().RoundTrip(req)
		})
		conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
		client := NewRefreshTokenClient(context.Background(), conf, tok, base, resilient.WithMaxElapsed(0))
		call := func(d time.Duration) (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if _, err := call(2 * time.Second); err == nil {
			t.Fatal("the call that started the refresh succeeded, want its deadline's error")
		}
		time.Sleep(resilient.DefaultMaxElapsed - time.Minute)
		if _, err := call(30 * time.Second); err == nil {
			t.Fatal("a call within the stuck refresh's bound succeeded, want its deadline's error")
		}
		time.Sleep(time.Minute)
		code, err := call(time.Minute)
		if err != nil || code != http.StatusOK {
			t.Errorf("a call after the stuck refresh's bound = %d, %v; want 200 after a refresh of its own", code, err)
		}
	})
}
