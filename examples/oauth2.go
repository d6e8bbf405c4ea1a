package examples

import (
	"context"
	"net/http"
	"net/url"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// NewClientCredentialsClient returns an HTTP client that authenticates with
// conf (the OAuth 2.0 client-credentials flow) and whose token requests and
// API calls both go through resilient.Transports over base (nil means
// http.DefaultTransport), configured with opts: the oauth2.Transport that
// sets the token is outside, resilient under it. oauth2 fetches tokens with
// the client found in ctx under oauth2.HTTPClient; the calls go through the
// Base of the oauth2.Transport.
//
// A token request is a POST, which resilient's write rule resends after a
// 5xx only to a host known to deduplicate writes. A token endpoint does
// not deduplicate, but a repeated client-credentials request only issues
// another token: the token requests' Transport names the token endpoint's
// host with resilient.WithKeyHonoringHosts, so that a 503 from it is
// retried. The API's Transport does not, so that its writes keep the rule.
// The client keeps ctx for its token requests: pass a context that lives as
// long as the client, not a request's.
//
// Wrapping the returned client's transport instead (resilient outside the
// oauth2.Transport) retries every failed token request as if it were a
// network error, a refused client secret included.
func NewClientCredentialsClient(ctx context.Context, conf *clientcredentials.Config, base http.RoundTripper, opts ...resilient.Option) *http.Client {
	tokenOpts := opts[:len(opts):len(opts)]
	if u, err := url.Parse(conf.TokenURL); err == nil && u.Host != "" {
		tokenOpts = append(tokenOpts, resilient.WithKeyHonoringHosts(u.Host)) // a repeated token request only issues another token
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: resilient.New(base, tokenOpts...)}) // token requests
	return &http.Client{Transport: &oauth2.Transport{Source: conf.TokenSource(ctx), Base: resilient.New(base, opts...)}}
}
