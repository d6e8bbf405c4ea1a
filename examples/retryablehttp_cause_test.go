package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// TestRetryableClientKeepsTheContextsCause: a call through
// NewRetryableClient canceled with a cause (context.WithCancelCause) while
// the server has not answered fails with an error that wraps that cause,
// as a plain client's call does (net/http and resilient return
// context.Cause). go-retryablehttp returns CheckRetry's error in
// preference to the request's, so a noRetry that returned ctx.Err() gave
// the caller context.Canceled alone, and errors.Is(err, cause) was false.
func TestRetryableClientKeepsTheContextsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quit := make(chan struct{})
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // never answers: the caller gives up
			case <-r.Context().Done():
			case <-quit:
			}
		}))
		t.Cleanup(func() { close(quit) })
		c := NewRetryableClient(srv.Base())
		cause := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(cause) })
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/posts", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if got := errors.Is(err, cause); !got {
			t.Errorf("errors.Is(%v, cause) = %v, want %v", err, got, true)
		}
	})
}
