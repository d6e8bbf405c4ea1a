package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRedirectFromUnknownRequestNotResentOnCallersKey checks that a write
// http.Client follows through a 307 whose response names no request (a
// base RoundTripper or a middleware that builds its responses without
// one, as the RoundTripper contract allows) is taken for a redirect from
// an unknown host: the key http.Client copied into it from the caller's
// request is the caller's word for the first host, not for the one the
// redirect named, and a 503 of that host, which ignores keys, is returned
// as a plain client returns it, not resent.
func TestRedirectFromUnknownRequestNotResentOnCallersKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*http.Request) *http.Request
	}{
		{"header key", func(req *http.Request) *http.Request {
			req.Header.Set("Idempotency-Key", "order-42")
			return req
		}},
		{"context key", func(req *http.Request) *http.Request {
			return req.WithContext(WithIdempotencyKey(req.Context(), "order-42"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var otherHits atomic.Int32
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if req.Body != nil {
					io.Copy(io.Discard, req.Body)
					req.Body.Close()
				}
				// Responses without their Request, as a stub or a
				// middleware that rebuilds them makes them.
				if req.URL.Host == "api.example" {
					return &http.Response{StatusCode: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"https://other.example/orders"}}, Body: http.NoBody}, nil
				}
				otherHits.Add(1)
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody}, nil
			})
			cl := &http.Client{Transport: New(base, fastRetries)}
			req := tc.set(newRequest(t, context.Background(), http.MethodPost, "https://api.example/orders", strings.NewReader(`{"amount":1}`)))
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if n := otherHits.Load(); n != 1 || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("the host the write was redirected to got it %d times, answer %d; want once, its 503 returned (resent on the caller's key for the first host)", n, resp.StatusCode)
			}
		})
	}
}
