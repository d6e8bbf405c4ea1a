package examples

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// NewClientCredentialsClient returns an HTTP client that authenticates with
// conf (the OAuth 2.0 client-credentials flow) and whose token requests and
// API calls both go through resilient.Transports over base (nil means
// http.DefaultTransport), configured with opts: the transport that sets the
// token is outside, resilient under it.
//
// A token request is a POST, which resilient's write rule resends after a
// 5xx only to a host known to deduplicate writes. A token endpoint does
// not deduplicate, but a repeated client-credentials request only issues
// another token: the token requests' Transport names the token endpoint's
// host with resilient.WithKeyHonoringHosts, so that a 503 from it is
// retried. The API's Transport does not, so that its writes keep the rule.
//
// A token request is made with the values of ctx (pass a context that
// lives as long as the client, not a request's) and ends with ctx or with
// the call that waits for it, whichever ends first: an oauth2.Transport
// would make it with ctx alone (oauth2's TokenSource takes no context), so
// that a call could wait past its deadline while resilient retries the
// token endpoint, and every other call with it.
//
// The token goes with a call's first request and with the redirects that
// stay at its origin (scheme, host and port), not with one that leaves it
// (see leftOrigin): net/http keeps an Authorization header the caller set
// from another host, not one a transport adds.
//
// Wrapping the returned client's transport instead (resilient outside the
// token's transport) retries every failed token request as if it were a
// network error, a refused client secret included.
func NewClientCredentialsClient(ctx context.Context, conf *clientcredentials.Config, base http.RoundTripper, opts ...resilient.Option) *http.Client {
	tokenOpts := opts[:len(opts):len(opts)]
	if u, err := url.Parse(conf.TokenURL); err == nil && u.Host != "" {
		if named, ok := keyHonoringHost(u.Host); ok {
			tokenOpts = append(tokenOpts, named) // a repeated token request only issues another token
		}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: resilient.New(base, tokenOpts...)}) // token requests
	return &http.Client{Transport: &tokenTransport{conf: conf, ctx: ctx, base: resilient.New(base, opts...), lock: make(chan struct{}, 1)}}
}

// keyHonoringHost returns resilient.WithKeyHonoringHosts(host), and false
// for a host that option refuses with a panic (a port past 65535, a
// wildcard, a list), which url.Parse takes: a token request there fails
// with an error, as through a plain client, and is resent by nothing.
func keyHonoringHost(host string) (opt resilient.Option, ok bool) {
	defer func() {
		if recover() != nil {
			opt, ok = nil, false
		}
	}()
	return resilient.WithKeyHonoringHosts(host), true
}

// tokenTransport is an oauth2.Transport whose token requests end with the
// call that waits for them.
type tokenTransport struct {
	conf *clientcredentials.Config
	ctx  context.Context // the token requests' values and lifetime
	base http.RoundTripper
	lock chan struct{} // held while the token is read or fetched
	tok  *oauth2.Token // the last token fetched; guarded by lock
}

// RoundTrip sends req through t.base with a valid token, or without one
// if req is a redirect that left the first request's origin.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if leftOrigin(req) {
		return t.base.RoundTrip(req) // the token is for the API's origin only
	}
	tok, err := t.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	req2 := req.Clone(req.Context())
	tok.SetAuthHeader(req2)
	return t.base.RoundTrip(req2)
}

// token returns the last token fetched while it is valid, else fetches one
// with t.ctx's values, until t.ctx or the call's ctx ends. A call that
// waits for another's fetch gives up when its own ctx ends.
func (t *tokenTransport) token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.lock }()
	if t.tok.Valid() {
		return t.tok, nil
	}
	fetch, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	defer context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })()
	if d, ok := ctx.Deadline(); ok {
		var cancelAt context.CancelFunc
		fetch, cancelAt = context.WithDeadline(fetch, d)
		defer cancelAt()
	}
	tok, err := t.conf.Token(fetch)
	if err != nil {
		return nil, err
	}
	t.tok = tok
	return tok, nil
}

// leftOrigin reports whether req is a redirect http.Client follows to an
// origin (scheme, host and port) other than the first request's, or from
// a request it cannot trace back to the first.
func leftOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil {
		if first.Response.Request == nil {
			return true
		}
		first = first.Response.Request
	}
	return first.URL.Scheme != req.URL.Scheme || !strings.EqualFold(first.URL.Host, req.URL.Host)
}
