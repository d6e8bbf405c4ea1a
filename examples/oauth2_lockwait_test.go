package examples

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2/clientcredentials"
)

// TestOAuth2ClientCredentialsWaitAndFetchShareTheBudget: a call without a
// deadline that waits for another call's client-credentials token request
// (the token endpoint hangs) and then makes its own gets its budget
// (resilient's, 5 minutes by default) for both together, as the recipe's
// doc says, and fails with an error wrapping context.DeadlineExceeded.
// Until 2026-12-07 its own token request got a whole budget of its own
// after the wait: 9 minutes.
func TestOAuth2ClientCredentialsWaitAndFetchShareTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quit := make(chan struct{})
		srv := newServer(t, hangingTokenServer(func() bool { return true }, quit))
		t.Cleanup(func() { close(quit) })
		conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token"}
		client := NewClientCredentialsClient(context.Background(), conf, srv.Base())
		first := make(chan struct{})
		go func() {
			defer close(first)
			if resp, err := client.Get(srv.URL + "/v1/me"); err == nil {
				resp.Body.Close()
				t.Error("the first call succeeded while the token endpoint hangs, want an error")
			}
		}()
		time.Sleep(time.Minute) // the first call holds the token lock
		began := time.Now()
		resp, err := client.Get(srv.URL + "/v1/me")
		waited := time.Since(began)
		if err == nil {
			resp.Body.Close()
			t.Fatal("the second call succeeded while the token endpoint hangs, want an error")
		}
		if waited > resilient.DefaultMaxElapsed || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the second call = %v after %v, want context.DeadlineExceeded within its budget %v", err, waited, resilient.DefaultMaxElapsed)
		}
		<-first
	})
}
