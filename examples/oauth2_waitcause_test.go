package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestOAuth2WaitEndsWithTheCallsCause: a call canceled with a cause
// (context.WithCancelCause) while it waits for its token, for a refresh it
// started or for another call's, fails with an error that wraps that
// cause, as a plain client's call and the recipe's own token requests do
// (net/http returns context.Cause). Until 2026-12-06 the wait returned
// ctx.Err(), context.Canceled alone, and errors.Is(err, cause) was false
// for the calls that happened to wait for a token.
func TestOAuth2WaitEndsWithTheCallsCause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		behind bool // whether another call's refresh holds the token lock
	}{
		{"the call that started the refresh", false},
		{"a call waiting for another's refresh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, slowRefreshServer()) // a refresh takes 3 s
				client := expiredRefreshClient(srv)
				firstDone := callAhead(client, srv.URL+"/v1/me", tc.behind) // its refresh holds the lock
				cause := errors.New("shutting down")
				ctx, cancel := context.WithCancelCause(context.Background())
				time.AfterFunc(time.Second, func() { cancel(cause) })
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if got := errors.Is(err, cause); !got {
					t.Errorf("errors.Is(%v, cause) = %v, want %v", err, got, true)
				}
				// The refresh runs to its end: the next call waits for it.
				if resp, err := client.Get(srv.URL + "/v1/me"); err == nil {
					resp.Body.Close()
				}
				<-firstDone
			})
		})
	}
}
