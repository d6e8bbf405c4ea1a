package resilient

import (
	"net/http"
	"testing"
)

// nilSigner is a middleware's RoundTripper whose methods need its value.
type nilSigner struct{ next http.RoundTripper }

func (s *nilSigner) RoundTrip(r *http.Request) (*http.Response, error) { return s.next.RoundTrip(r) }

// TestChainMiddlewareReturnsTypedNil: a middleware that returns a nil
// pointer or a nil func as its RoundTripper (a constructor that returns
// (*Signer)(nil) on a bad setting, a RoundTripper func left unset) returns
// a RoundTripper that is not nil, but as broken as a nil one: the chain
// panicked on a nil dereference at its first request, inside the caller's
// type, where Chain promises to report a nil RoundTripper at once, naming
// the middleware by its position (TestChainMiddlewareReturnsNil).
func TestChainMiddlewareReturnsTypedNil(t *testing.T) {
	ok := func(next http.RoundTripper) http.RoundTripper { return next }
	nilPointer := func(http.RoundTripper) http.RoundTripper { return (*nilSigner)(nil) }
	nilFunc := func(http.RoundTripper) http.RoundTripper { return roundTripFunc(nil) }
	for _, tc := range []struct {
		name string
		mws  []Middleware
		want string
	}{
		{"nil pointer outermost", []Middleware{nilPointer, ok}, "resilient: Chain: middleware 0 returned a nil RoundTripper"},
		{"nil func inner", []Middleware{ok, nil, nilFunc}, "resilient: Chain: middleware 2 returned a nil RoundTripper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != tc.want {
					t.Errorf("Chain panicked with %v, want %q", r, tc.want)
				}
			}()
			Chain(&rtScript{}, tc.mws...)
		})
	}
}
