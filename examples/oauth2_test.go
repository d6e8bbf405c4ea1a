package examples

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oauthServer is an authorization server (POST /token) and an API
// (GET /v1/me) on one host: token answers the n-th token request (from 1),
// api every API call.
func oauthServer(token func(w http.ResponseWriter, n int), api http.HandlerFunc) http.Handler {
	var n int
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		n++
		token(w, n)
	})
	mux.Handle("GET /v1/me", api)
	return mux
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func tokenOK(w http.ResponseWriter) {
	jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
}

var (
	tokenRefused = func(w http.ResponseWriter, _ int) {
		jsonAnswer(w, http.StatusUnauthorized, `{"error":"invalid_client","error_description":"Client authentication failed"}`)
	}
	tokenFlakyOnce = func(w http.ResponseWriter, n int) {
		if n == 1 {
			jsonAnswer(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
			return
		}
		tokenOK(w)
	}
	tokenAlwaysOK = func(w http.ResponseWriter, _ int) { tokenOK(w) }
	apiOK         = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			jsonAnswer(w, http.StatusUnauthorized, `{"error":{"code":"unauthorized","message":"no token"}}`)
			return
		}
		jsonAnswer(w, http.StatusOK, `{"id":"me"}`)
	}
	apiDown = func(w http.ResponseWriter, _ *http.Request) {
		jsonAnswer(w, http.StatusInternalServerError, `{"error":{"code":"internal","message":"down"}}`)
	}
)

// oauthSetup builds the client of one arrangement from the config and the
// server's transport.
type oauthSetup func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client

var (
	// oauthOutside is the README's pattern applied to the client oauth2
	// returns: resilient.New wraps the SDK's transport.
	oauthOutside oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		c := conf.Client(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}))
		c.Transport = resilient.New(c.Transport)
		return c
	}
	// oauthBaseOnly puts resilient under the oauth2.Transport but leaves
	// the token requests on a plain client.
	oauthBaseOnly oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		ts := conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}))
		return &http.Client{Transport: &oauth2.Transport{Source: ts, Base: resilient.New(base)}}
	}
	// oauthUnnamed puts one resilient.Transport under both, with
	// resilient's defaults: the token host is not named.
	oauthUnnamed oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		return conf.Client(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: resilient.New(base)}))
	}
	oauthRecipe oauthSetup = func(conf *clientcredentials.Config, base http.RoundTripper) *http.Client {
		return NewClientCredentialsClient(context.Background(), conf, base)
	}
)

// oauthCounts is what the server saw of a series of calls, and how the
// last one ended.
type oauthCounts struct {
	tokens, calls measurement
	status        int // of the last call; 0 for an error
}

// oauthSeries makes calls calls with one client setup builds against a
// server of token and api, and returns the token requests and API attempts
// the server saw.
func oauthSeries(t *testing.T, calls int, setup oauthSetup, token func(http.ResponseWriter, int), api http.HandlerFunc) (c oauthCounts) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, oauthServer(token, api))
		conf := &clientcredentials.Config{
			ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token",
			AuthStyle: oauth2.AuthStyleInHeader, // the default, auto-detection, sends a refused secret twice
		}
		client := setup(conf, srv.Base())
		var callHits []int
		c.tokens = series(calls, func() int { return srv.Hits("/token") }, func(int) {
			c.status = 0
			resp, err := client.Get(srv.URL + "/v1/me")
			if err == nil {
				c.status = resp.StatusCode
				resp.Body.Close()
			}
			callHits = append(callHits, srv.Hits("/v1/me"))
		})
		c.calls = measurement{First: callHits[0], Total: callHits[len(callHits)-1], Calls: calls}
	})
	return c
}

// TestOAuth2 measures the token requests and API attempts of failing calls
// with resilient around the client oauth2 returns (before) and with
// NewClientCredentialsClient (after).
func TestOAuth2(t *testing.T) {
	t.Run("TokenRefused", func(t *testing.T) {
		// A wrong secret is permanent; outside the oauth2.Transport,
		// resilient sees only an error and retries it, until its budget
		// is spent.
		before := oauthSeries(t, seriesCalls, oauthOutside, tokenRefused, apiOK)
		after := oauthSeries(t, seriesCalls, oauthRecipe, tokenRefused, apiOK)
		if before.tokens != (measurement{6, 110, seriesCalls}) || after.tokens != (measurement{1, 100, seriesCalls}) || before.status != 0 || after.status != 0 {
			t.Errorf("token requests: before %+v (status %d), recipe %+v (status %d); want {6 110 %d} and {1 100 %[5]d}, both failing",
				before.tokens, before.status, after.tokens, after.status, seriesCalls)
		}
		checkDocRow(t, "oauth2", "token endpoint: 401 `invalid_client` (token requests)", before.tokens, after.tokens)
	})
	t.Run("TokenFlakyOnce", func(t *testing.T) {
		// One call: the token it gets is reused by the next ones.
		before := oauthSeries(t, 1, oauthOutside, tokenFlakyOnce, apiOK)
		after := oauthSeries(t, 1, oauthRecipe, tokenFlakyOnce, apiOK)
		if before.tokens.First != 2 || after.tokens.First != 2 || before.status != http.StatusOK || after.status != http.StatusOK {
			t.Errorf("token requests: before %d (status %d), recipe %d (status %d); want 2 and 2, both succeeding",
				before.tokens.First, before.status, after.tokens.First, after.status)
		}
		// The token host not named: the write rule does not resend the
		// token request after its 503, and the call fails.
		unnamed := oauthSeries(t, 1, oauthUnnamed, tokenFlakyOnce, apiOK)
		if unnamed.tokens.First != 1 || unnamed.status != 0 {
			t.Errorf("one Transport, token host not named: %d token requests (status %d), want 1 and a failed call", unnamed.tokens.First, unnamed.status)
		}
		// resilient only as the Base: the token request is not retried.
		baseOnly := oauthSeries(t, 1, oauthBaseOnly, tokenFlakyOnce, apiOK)
		if baseOnly.tokens.First != 1 || baseOnly.status != 0 {
			t.Errorf("resilient as Base only: %d token requests (status %d), want 1 and a failed call", baseOnly.tokens.First, baseOnly.status)
		}
		checkDocRow(t, "oauth2", "token endpoint: one 503 (token requests)", before.tokens, after.tokens)
	})
	t.Run("APIDown", func(t *testing.T) {
		// Over the series (100 minutes), the token (expires_in 3600) is
		// fetched twice.
		before := oauthSeries(t, seriesCalls, oauthOutside, tokenAlwaysOK, apiDown)
		after := oauthSeries(t, seriesCalls, oauthRecipe, tokenAlwaysOK, apiDown)
		want := measurement{6, 110, seriesCalls}
		if before.calls != want || after.calls != want || before.tokens.Total != 2 || after.tokens.Total != 2 || before.status != 500 || after.status != 500 {
			t.Errorf("API attempts: before %+v (%d tokens, status %d), recipe %+v (%d tokens, status %d); want %+v with 2 tokens and a 500, both",
				before.calls, before.tokens.Total, before.status, after.calls, after.tokens.Total, after.status, want)
		}
		checkDocRow(t, "oauth2", "API: 500 on every attempt", before.calls, after.calls)
	})
}

// TestOAuth2APIWritesKeepTheRule shows why the recipe names the token host
// on a Transport of its own: an API on the same host as the token endpoint
// still gets its writes under the write rule, so a POST answered with a
// 502 is not resent, while a token request answered with a 503 is.
func TestOAuth2APIWritesKeepTheRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("POST /token", oauthServer(tokenFlakyOnce, apiOK))
		mux.HandleFunc("POST /v1/notes", func(w http.ResponseWriter, _ *http.Request) {
			jsonAnswer(w, http.StatusBadGateway, `{"error":{"code":"bad_gateway","message":"upstream"}}`)
		})
		srv := newServer(t, mux)
		conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
		client := NewClientCredentialsClient(context.Background(), conf, srv.Base())
		resp, err := client.Post(srv.URL+"/v1/notes", "application/json", strings.NewReader(`{"text":"hello"}`))
		if err != nil {
			t.Fatalf("Post: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want the 502", resp.StatusCode)
		}
		if tokens, notes := srv.Hits("/token"), srv.Hits("/v1/notes"); tokens != 2 || notes != 1 {
			t.Errorf("%d token requests and %d POSTs, want 2 (the 503 retried) and 1 (the 502 not resent)", tokens, notes)
		}
	})
}

// unavailableTokenEndpoint starts a server whose token endpoint answers
// every request with a 503 temporarily_unavailable, and returns it with a
// client of the recipe that fetches its tokens there.
func unavailableTokenEndpoint(t *testing.T) (*server, *http.Client) {
	t.Helper()
	srv := newServer(t, oauthServer(func(w http.ResponseWriter, _ int) {
		jsonAnswer(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
	}, apiOK))
	conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	return srv, NewClientCredentialsClient(context.Background(), conf, srv.Base())
}

// TestOAuth2TokenRequestsKeepTheCallsDeadline shows a call bounded by its
// context's deadline while the token endpoint fails, whether the call
// fetches the token itself or waits for another call's fetch: the token
// requests resilient retries for it end with it, as a plain client's
// one token request would. Through an oauth2.Transport, whose token
// requests take the client's context only, the call returned after the
// token requests' 6 attempts, 15 to 30s later; waiting, it would not
// return before them either (a call blocked on a sync.Mutex, as in
// oauth2's ReuseTokenSource, also keeps the bubble's clock from moving).
func TestOAuth2TokenRequestsKeepTheCallsDeadline(t *testing.T) {
	for _, waits := range []bool{false, true} {
		t.Run(map[bool]string{false: "Fetching", true: "Waiting"}[waits], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, client := unavailableTokenEndpoint(t)
				done := make(chan struct{})
				if waits {
					// A call without a deadline fetches the token first.
					go func() {
						defer close(done)
						if resp, err := client.Get(srv.URL + "/v1/me"); err == nil {
							resp.Body.Close()
						}
					}()
					synctest.Wait()
				} else {
					close(done)
				}
				defer func() { <-done }()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded without a token")
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("the call returned after %v (%d token requests), past its deadline of 2s", d, srv.Hits("/token"))
				}
			})
		})
	}
}

// refreshServer is an authorization server that rotates refresh tokens
// (POST /token, grant_type=refresh_token: each refresh token is good once)
// and an API (GET /v1/me, POST /v1/notes answered 502) on one host. Its
// first token request is answered 503, before the refresh is processed
// (lost false: a proxy's) or after (lost true: the rotated token is lost
// with the answer).
func refreshServer(lost bool) http.Handler {
	var n int
	current := "rt-1"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 && !lost {
			jsonAnswer(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
			return
		}
		if r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("refresh_token") != current {
			jsonAnswer(w, http.StatusBadRequest, `{"error":"invalid_grant"}`)
			return
		}
		current = "rt-" + strconv.Itoa(n+1)
		if n == 1 {
			jsonAnswer(w, http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`)
			return
		}
		jsonAnswer(w, http.StatusOK, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"`+current+`"}`)
	})
	mux.HandleFunc("GET /v1/me", apiOK)
	mux.HandleFunc("POST /v1/notes", func(w http.ResponseWriter, _ *http.Request) {
		jsonAnswer(w, http.StatusBadGateway, `{"error":{"code":"bad_gateway","message":"upstream"}}`)
	})
	return mux
}

// TestOAuth2RefreshTokens tests NewRefreshTokenClient (authorization code,
// refresh tokens): the token requests get a Transport of their own that
// names the token endpoint's host, and the API calls another, as in
// NewClientCredentialsClient. A refresh answered 503 before it was
// processed is then resent and the call succeeds, and an API POST
// answered 502 is not resent. With the host unnamed (an oauth2.Transport
// over resilient.New, ctx's client resilient.New too), that refresh fails
// its call. oauth2.Config.Client(ctx, tok) with the named Transport as
// ctx's client instead sends the API calls through it too (ctx's client is
// the oauth2.Transport's Base): the POST is resent after each 502. A
// refresh whose answer was lost after the server rotated the token fails
// with the host named or not: the call that resends it at once and the
// next call that refreshes again send the same spent token.
func TestOAuth2RefreshTokens(t *testing.T) {
	type result struct{ me1, me2, notes, tokens int }
	run := func(t *testing.T, lost bool, setup string) (r result) {
		synctest.Test(t, func(t *testing.T) {
			srv := newServer(t, refreshServer(lost))
			conf := &oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
			tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Hour)}
			var client *http.Client
			switch setup {
			case "recipe":
				client = NewRefreshTokenClient(context.Background(), conf, tok, srv.Base())
			case "unnamed":
				ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: resilient.New(srv.Base())})
				client = &http.Client{Transport: &oauth2.Transport{Source: conf.TokenSource(ctx, tok), Base: resilient.New(srv.Base())}}
			case "config":
				u, _ := url.Parse(conf.Endpoint.TokenURL)
				ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: resilient.New(srv.Base(), resilient.WithKeyHonoringHosts(u.Host))})
				client = conf.Client(ctx, tok)
			}
			status := func(resp *http.Response, err error) int {
				if err != nil {
					return 0
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			r.me1 = status(client.Get(srv.URL + "/v1/me"))
			r.me2 = status(client.Get(srv.URL + "/v1/me"))
			status(client.Post(srv.URL+"/v1/notes", "application/json", strings.NewReader(`{"text":"hello"}`)))
			r.notes, r.tokens = srv.Hits("/v1/notes"), srv.Hits("/token")
		})
		return r
	}
	for _, tc := range []struct {
		name, setup string
		lost        bool
		want        result
	}{
		{"Recommended", "recipe", false, result{200, 200, 1, 2}},
		{"Unnamed", "unnamed", false, result{0, 200, 1, 2}},
		{"RecommendedLostAnswer", "recipe", true, result{0, 0, 0, 4}},
		{"UnnamedLostAnswer", "unnamed", true, result{0, 0, 0, 3}},
		{"ConfigClientNamesTheAPI", "config", false, result{200, 200, 6, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(t, tc.lost, tc.setup); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestOAuth2TokenRequestsEndWithTheCall: a call without a deadline that is
// cancelled while the token endpoint fails ends then, with its token
// requests, as a plain client's one token request would, not after the
// token requests' 6 attempts. A call with a deadline gives its token
// requests that deadline: resilient stops retrying the token endpoint
// when no further attempt fits in it, and the call gets the endpoint's
// answer (temporarily_unavailable) before its deadline, not a cancellation
// at it.
func TestOAuth2TokenRequestsEndWithTheCall(t *testing.T) {
	for _, deadline := range []bool{false, true} {
		t.Run(map[bool]string{false: "Cancelled", true: "Deadline"}[deadline], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, client := unavailableTokenEndpoint(t)
				ctx, cancel := context.WithCancel(context.Background())
				if deadline {
					ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
				} else {
					time.AfterFunc(2*time.Second, cancel)
				}
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me", nil)
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded without a token")
				}
				d := time.Since(start)
				switch {
				case !deadline && (d != 2*time.Second || !errors.Is(err, context.Canceled)):
					t.Errorf("cancelled at 2s: the call returned after %v (%d token requests) with %v; want at 2s, cancelled", d, srv.Hits("/token"), err)
				case deadline && (d >= 2*time.Second || !strings.Contains(err.Error(), "temporarily_unavailable")):
					t.Errorf("deadline 2s: the call returned after %v (%d token requests) with %v; want the token endpoint's answer before 2s", d, srv.Hits("/token"), err)
				}
			})
		})
	}
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed int
}

func (b *closeCounter) Close() error { b.closed++; return nil }

// TestOAuth2ClosesTheBodyOfACallWithoutAToken: a call that fails because no
// token came (a refused client secret) has its request body closed, as a
// RoundTripper must close it even on an error.
func TestOAuth2ClosesTheBodyOfACallWithoutAToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, oauthServer(tokenRefused, apiOK))
		conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "wrong", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
		client := NewClientCredentialsClient(context.Background(), conf, srv.Base())
		body := &closeCounter{Reader: strings.NewReader(`{"note":"hi"}`)}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/notes", body)
		if resp, err := client.Transport.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("the call succeeded without a token")
		}
		if body.closed == 0 {
			t.Error("the request body was not closed")
		}
	})
}

// TestOAuth2LeavesTheCallersOptionsAlone: the options the caller passes
// are not written to: the token requests' host option is added to a copy,
// not to the caller's slice past its length, where a caller's next option
// would be overwritten.
func TestOAuth2LeavesTheCallersOptionsAlone(t *testing.T) {
	opts := []resilient.Option{resilient.WithMaxRetries(1), resilient.WithMaxRetries(2)}
	before := reflect.ValueOf(opts[1]).Pointer()
	conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: "https://auth.example.test/token"}
	NewClientCredentialsClient(context.Background(), conf, nil, opts[:1]...)
	if reflect.ValueOf(opts[1]).Pointer() != before {
		t.Error("NewClientCredentialsClient overwrote the caller's option past the slice it was given")
	}
}

// TestOAuth2TokenURLNotNamedDoesNotPanic: url.Parse takes a TokenURL whose
// host resilient.WithKeyHonoringHosts refuses with a panic (a port past
// 65535, as a typo of 8443 makes it; a wildcard; a list), and a plain
// oauth2 client (conf.Client) made with it fails each call with an error.
// The recipe's client does the same, where NewClientCredentialsClient
// panicked.
func TestOAuth2TokenURLNotNamedDoesNotPanic(t *testing.T) {
	for _, tokenURL := range []string{
		"https://auth.example.test:84433/token",
		"https://*.example.test/token",
		"https://auth,example.test/token",
		"https://auth;example.test/token",
	} {
		t.Run(tokenURL, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tokenRequests int
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					tokenRequests++
					if req.Body != nil {
						req.Body.Close()
					}
					return nil, errors.New("no such host")
				})
				conf := &clientcredentials.Config{ClientID: "app", ClientSecret: "s3cret", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}
				var client *http.Client
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("NewClientCredentialsClient with TokenURL %q panicked: %v", tokenURL, r)
						}
					}()
					client = NewClientCredentialsClient(context.Background(), conf, base)
				}()
				resp, err := client.Get("https://api.example.test/v1/me")
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded without a token")
				}
				if tokenRequests == 0 {
					t.Error("no token request was sent, want one, as a plain client sends it")
				}
			})
		})
	}
}

// idleCloser is a base RoundTripper that counts the calls of its
// CloseIdleConnections.
type idleCloser struct {
	http.RoundTripper
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

// TestTokenClientClosesIdleConnections: the token clients' CloseIdleConnections
// reaches the base below their resilient.Transport, as a plain client's
// reaches its transport. Before, tokenTransport had no such method, and
// http.Client.CloseIdleConnections did nothing.
func TestTokenClientClosesIdleConnections(t *testing.T) {
	for name, newClient := range map[string]func(http.RoundTripper) *http.Client{
		"client credentials": func(base http.RoundTripper) *http.Client {
			return NewClientCredentialsClient(t.Context(), &clientcredentials.Config{TokenURL: "https://auth.test/token"}, base)
		},
		"refresh token": func(base http.RoundTripper) *http.Client {
			return NewRefreshTokenClient(t.Context(), &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: "https://auth.test/token"}}, nil, base)
		},
	} {
		base := &idleCloser{RoundTripper: http.DefaultTransport}
		newClient(base).CloseIdleConnections()
		if base.closed != 1 {
			t.Errorf("%s: CloseIdleConnections reached the base %d times, want 1", name, base.closed)
		}
	}
}
