package examples

import (
	"context"
	"net/http"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// NewClientCredentialsClient returns an HTTP client that authenticates with
// conf (the OAuth 2.0 client-credentials flow) and whose token requests and
// API calls both go through one resilient.Transport over base (nil means
// http.DefaultTransport), configured with opts: the oauth2.Transport that
// sets the token is outside, resilient under it. oauth2 fetches tokens with
// the client found in ctx under oauth2.HTTPClient and sends the calls
// through that client's transport, so placing resilient there protects both.
// The client keeps ctx for its token requests: pass a context that lives as
// long as the client, not a request's. The same context works for
// oauth2.Config.Client and TokenSource.
//
// Wrapping the returned client's transport instead (resilient outside the
// oauth2.Transport) retries every failed token request as if it were a
// network error, a refused client secret included.
func NewClientCredentialsClient(ctx context.Context, conf *clientcredentials.Config, base http.RoundTripper, opts ...resilient.Option) *http.Client {
	rt := resilient.New(base, opts...)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rt}) // token requests and calls go through rt
	return conf.Client(ctx)
}
