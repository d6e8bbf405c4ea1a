package examples

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

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
// lives as long as the client, not a request's) and ends with ctx, with
// the call that waits for it or with that call's budget (the API
// Transport's MaxElapsed, or the lower one set for the call with
// resilient.WithCallOptions, over all of the token's requests), whichever
// ends first; the call that waited then has what the wait left of its
// budget (the Transport's, or one set for the call with
// resilient.WithCallOptions: see resilient.WithMaxElapsedSpent), so that
// the wait and the call stay within it together: an oauth2.Transport
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
	return newTokenClient(ctx, conf.TokenURL, nil, func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		return conf.Token(ctx)
	}, false, base, opts...)
}

// NewRefreshTokenClient returns an HTTP client that authenticates with tok
// and, once it expires, with the token conf issues for its refresh token
// (oauth2.Config: the authorization code flow), as
// NewClientCredentialsClient authenticates with a client's credentials:
// the token requests through a resilient.Transport that names the token
// endpoint's host, the API calls through another, the token with a call's
// first request and the redirects that stay at its origin only. A refresh
// is made with ctx's values and, once started, runs to its end (or ctx's),
// whatever the call that started it: a server that rotates refresh tokens
// has spent the one sent when it processes the refresh, and an answer
// dropped because that call's deadline passed would lose the new one. The
// calls that wait for a refresh give up when their own context ends, and
// the token it brings serves the calls after them. A refresh is abandoned
// after the token requests' budget (resilient.WithMaxElapsed among opts,
// resilient.DefaultMaxElapsed when that is zero), and a call's wait for
// its token and the call itself stay within its budget together (the API
// Transport's MaxElapsed, as for NewClientCredentialsClient). An
// oauth2.Transport
// would set the token on every redirect's request, to any host, and make
// its calls wait for a refresh past their deadlines.
func NewRefreshTokenClient(ctx context.Context, conf *oauth2.Config, tok *oauth2.Token, base http.RoundTripper, opts ...resilient.Option) *http.Client {
	return newTokenClient(ctx, conf.Endpoint.TokenURL, tok, func(ctx context.Context, last *oauth2.Token) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, last).Token() // refreshes last, whose refresh token the answer may rotate
	}, true, base, opts...)
}

// newTokenClient returns the client of NewClientCredentialsClient and
// NewRefreshTokenClient: a tokenTransport that starts with tok and gets
// the next token from fetch, whose requests go to tokenURL; with outlive,
// a fetch is not cut when the call that started it ends (see
// tokenTransport.token).
func newTokenClient(ctx context.Context, tokenURL string, tok *oauth2.Token, fetch func(context.Context, *oauth2.Token) (*oauth2.Token, error), outlive bool, base http.RoundTripper, opts ...resilient.Option) *http.Client {
	tokenOpts := opts[:len(opts):len(opts)]
	if u, err := url.Parse(tokenURL); err == nil && u.Host != "" {
		if named, ok := keyHonoringHost(u.Host); ok {
			tokenOpts = append(tokenOpts, named) // a repeated token request only issues another token
		}
	}
	tokenRT, api := resilient.New(base, tokenOpts...), resilient.New(base, opts...)
	bound := tokenRT.MaxElapsed()
	if bound == 0 {
		bound = resilient.DefaultMaxElapsed // a refresh outlives its call: never without a bound
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: tokenRT}) // token requests
	t := &tokenTransport{
		fetch: fetch, ctx: ctx, base: api, api: api, lock: make(chan struct{}, 1), tok: tok,
		budget: api.MaxElapsed(), outlive: outlive, bound: bound,
	}
	t.cur.Store(tok)
	return &http.Client{Transport: t}
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
// call that waits for them, but a refresh's (see token).
type tokenTransport struct {
	fetch func(context.Context, *oauth2.Token) (*oauth2.Token, error) // the next token, given the last
	ctx   context.Context                                             // the token requests' values and lifetime
	base  http.RoundTripper
	api   *resilient.Transport // base, for the budget of each call (CallMaxElapsed)
	lock  chan struct{}        // held while the token is read or fetched, but a valid one's read (see cur)
	tok   *oauth2.Token        // the last token fetched; guarded by lock

	// cur is tok, stored with it, read without lock while it is valid:
	// the calls that find a valid token do not wait for each other.
	cur atomic.Pointer[oauth2.Token]

	// budget bounds a call's wait for its token (the API Transport's
	// MaxElapsed), lowered for a call whose own budget is lower (see
	// waitBound); zero leaves it to the call's context.
	budget time.Duration

	// outlive says that a fetch, once started, runs to its end whatever
	// the call that started it (refreshes: see token), or until bound
	// has passed, when it is abandoned (see refresh).
	outlive bool
	bound   time.Duration
}

// fetched is the outcome of a refresh (see tokenTransport.refresh).
type fetched struct {
	tok      *oauth2.Token
	err      error
	panicked bool // the fetch panicked with val
	val      any
}

// RoundTrip sends req through t.base with a valid token, or without one
// if req is a redirect that left the first request's origin.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if leftOrigin(req) {
		return t.base.RoundTrip(req) // the token is for the API's origin only
	}
	ctx := req.Context()
	tok, end, limit, err := t.token(ctx)
	if err == nil && !end.IsZero() {
		// The call waited for its token: the API's Transport counts
		// the wait as spent of the call's budget, so that both
		// together stay within it, whoever set it.
		if left := time.Until(end); left > 0 {
			ctx = resilient.WithCallOptions(ctx, resilient.WithMaxElapsedSpent(limit-left))
		} else {
			err = errBudget(limit)
		}
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	req2 := req.Clone(ctx)
	tok.SetAuthHeader(req2)
	return t.base.RoundTrip(req2)
}

// CloseIdleConnections closes the idle connections of the base below the
// API's resilient.Transport (the token requests' too, when they share it),
// as http.Client.CloseIdleConnections expects of its transport.
func (t *tokenTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Unwrap returns the API's resilient.Transport, under t: its HostState,
// ResetHost and MaxElapsed are reached with
// client.Transport.(interface{ Unwrap() http.RoundTripper }).Unwrap().
func (t *tokenTransport) Unwrap() http.RoundTripper { return t.base }

// token returns the last token fetched while it is valid, else fetches one
// with t.ctx's values, until t.ctx or the call's ctx ends. A call that
// waits for another's fetch gives up when its own ctx ends, and a call
// that gives up on its ctx fails with the ctx's cause (context.Cause), as
// net/http's Transport does. With
// t.outlive, the fetch ends with t.ctx only: it runs on its own, holding
// t.lock, and keeps the token it brings after the call that started it
// gave up, for a refresh whose answer is dropped after the server rotated
// the refresh token has spent the token the client holds (the next
// refresh is refused with invalid_grant, and the user must authorize
// again). A panic of that fetch goes to the call that started it, when
// that call still waits for it. A call that must wait (for t.lock or a
// fetch) waits limit at most (see waitBound), as long as its own
// Transport would have tried: a refresh that outlived its call, or a
// fetch of a call without a deadline, made no later call wait past it. A
// call that waited gets end, the end of limit counted from the start of
// its wait (zero for a call that did not wait, or without limit), which
// bounds its call through t.base too (see RoundTrip).
func (t *tokenTransport) token(ctx context.Context) (tok *oauth2.Token, end time.Time, limit time.Duration, err error) {
	if tok := t.cur.Load(); tok.Valid() {
		return tok, time.Time{}, 0, nil // no wait: the calls with a valid token take no lock
	}
	limit = t.waitBound(ctx)
	var budget <-chan time.Time // the end of limit, once the call waits
	select {
	case t.lock <- struct{}{}:
	default:
		if limit > 0 {
			end = time.Now().Add(limit)
			timer := time.NewTimer(limit)
			defer timer.Stop()
			budget = timer.C
		}
		select {
		case t.lock <- struct{}{}:
		case <-ctx.Done():
			return nil, time.Time{}, 0, context.Cause(ctx)
		case <-budget:
			return nil, time.Time{}, 0, errBudget(limit)
		}
	}
	if t.tok.Valid() {
		tok := t.tok
		<-t.lock
		return tok, end, limit, nil
	}
	if budget == nil && limit > 0 {
		end = time.Now().Add(limit)
		timer := time.NewTimer(limit)
		defer timer.Stop()
		budget = timer.C
	}
	if t.outlive {
		done := make(chan fetched, 1)
		go t.refresh(t.tok, done)
		select {
		case f := <-done:
			if f.panicked {
				panic(f.val)
			}
			return f.tok, end, limit, f.err
		case <-ctx.Done():
			return nil, time.Time{}, 0, context.Cause(ctx) // a panic of the fetch then is dropped with it
		case <-budget:
			return nil, time.Time{}, 0, errBudget(limit)
		}
	}
	defer func() { <-t.lock }()
	fetch, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	defer context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })()
	if d, ok := ctx.Deadline(); ok {
		var cancelAt context.CancelFunc
		fetch, cancelAt = context.WithDeadline(fetch, d)
		defer cancelAt()
	}
	if limit > 0 {
		var cancelAt context.CancelFunc
		fetch, cancelAt = context.WithDeadlineCause(fetch, end, errBudget(limit)) // what the wait for t.lock left of it
		defer cancelAt()
	}
	tok, err = t.fetch(fetch, t.tok)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	t.tok = tok
	t.cur.Store(tok)
	return tok, end, limit, nil
}

// waitBound returns how long a call made with ctx may wait for its token:
// t.budget, lowered to what the call's own budget holds when that is less
// (one its caller set lower with resilient.WithCallOptions, or that a
// layer above spent part of: see resilient.Transport.CallMaxElapsed), so
// that the wait ends within it; zero for no bound but ctx. A budget the
// caller raised for the call does not raise the wait.
func (t *tokenTransport) waitBound(ctx context.Context) time.Duration {
	limit := t.budget
	if b := t.api.CallMaxElapsed(ctx); b > 0 && (limit == 0 || b < limit) {
		limit = b
	}
	return limit
}

// refresh fetches the token that follows last, for t.token, which holds
// t.lock, under t.ctx and for t.bound at most; it keeps the token it
// brings, releases t.lock and sends the outcome on done (buffered). A
// fetch that has not returned after t.bound (a base deaf to its context)
// is abandoned: t.lock is released, so that the next call starts a
// refresh of its own, this goroutine returns, and the goroutine of the
// fetch, when the fetch returns, keeps the token it brings only if no
// refresh has brought one since (see keepLate).
func (t *tokenTransport) refresh(last *oauth2.Token, done chan<- fetched) {
	ctx, cancel := context.WithTimeoutCause(t.ctx, t.bound, fmt.Errorf("resilient: token refresh abandoned after %v", t.bound))
	defer cancel()
	res := make(chan fetched)        // the fetch's outcome, to this goroutine while it waits
	abandoned := make(chan struct{}) // closed when it waits no longer
	go func() {
		f := fetched{panicked: true}
		defer func() {
			if f.panicked {
				// The caller's code (a base below the token requests'
				// Transport) panicked: the panic goes to the call that
				// started the fetch, as without this goroutine, rather
				// than end the process.
				f.val = recover()
			}
			select {
			case res <- f:
			case <-abandoned: // nobody waits: the goroutine stuck in the base keeps it
				t.keepLate(last, f)
			}
		}()
		tok, err := t.fetch(ctx, last)
		f = fetched{tok: tok, err: err}
	}()
	var f fetched
	select {
	case f = <-res:
	case <-ctx.Done():
		select {
		case f = <-res: // it returned as it was abandoned
		default:
			f = fetched{err: context.Cause(ctx)}
			close(abandoned)
		}
	}
	if f.err == nil && !f.panicked {
		t.tok = f.tok
		t.cur.Store(f.tok)
	}
	<-t.lock
	done <- f
}

// keepLate keeps the token of a refresh of last that was abandoned and
// answered after all, unless a refresh since has brought one: the server
// may have rotated the refresh token when it processed that refresh, and
// then refuses last's with invalid_grant.
func (t *tokenTransport) keepLate(last *oauth2.Token, f fetched) {
	if f.err != nil || f.panicked || f.tok == nil {
		return
	}
	t.lock <- struct{}{}
	if t.tok == last {
		t.tok = f.tok
		t.cur.Store(f.tok)
	}
	<-t.lock
}

// errBudget is the error of a call that waited limit, its budget, for its
// token.
func errBudget(limit time.Duration) error {
	return fmt.Errorf("resilient: no token within the call's budget of %v: %w", limit, context.DeadlineExceeded)
}

// leftOrigin reports whether req is a redirect http.Client follows to an
// origin (scheme, host and port, the scheme's default port when none is
// named) other than the first request's, or from a request it cannot
// trace back to the first.
func leftOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil {
		if first.Response.Request == nil {
			return true
		}
		first = first.Response.Request
	}
	if first.URL.Scheme != req.URL.Scheme {
		return true
	}
	return !strings.EqualFold(first.URL.Host, req.URL.Host) && !strings.EqualFold(origin(first.URL), origin(req.URL))
}

// origin returns u's host and port, the scheme's default port when u
// names none: "api.example:443" for https://api.example/.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
