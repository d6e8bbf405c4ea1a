package examples

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// retryableDefaults is go-retryablehttp's default client (4 retries, on
// any 5xx and any error, POSTs included) over resilient.New.
func retryableDefaults(base http.RoundTripper, opts ...resilient.Option) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient.Transport = resilient.New(base, opts...)
	return c
}

// retryableSeries makes a series of failing calls of tc with the
// go-retryablehttp client client makes, and returns the server attempts,
// the distinct keys sent and the posts the server stored. With
// wantResponse, each call must return the 500 and its envelope; else
// go-retryablehttp's error giving up after 5 attempts.
func retryableSeries(t *testing.T, tc sdkCase, client func(base http.RoundTripper, opts ...resilient.Option) *retryablehttp.Client, wantResponse bool) (m measurement, keys, stored int) {
	synctest.Test(t, func(t *testing.T) {
		srv := newAltyaa(t, tc.route, tc.step, tc.serverOpts()...)
		c := client(srv.Base(), tc.clientOpts(t, srv)...)
		c.Logger = nil // quiet tests: the defaults log each request (the recipe sets no logger)
		m = series(seriesCalls, func() int { return srv.Hits("/v1/posts") }, func(i int) {
			var req *retryablehttp.Request
			var err error
			if tc.post() {
				req, err = retryablehttp.NewRequest(http.MethodPost, srv.URL+"/v1/posts", fmt.Appendf(nil, `{"text":"hello","n":%d}`, i))
				req.Header.Set("Content-Type", "application/json")
			} else {
				req, err = retryablehttp.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if !wantResponse {
				if err == nil || !strings.Contains(err.Error(), "giving up after 5 attempt(s)") {
					t.Fatalf("error %v, want go-retryablehttp giving up", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want the 500 response", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte("service_unavailable")) {
				t.Errorf("got %d %q, want the 500 and its envelope", resp.StatusCode, body)
			}
		})
		keys, stored = len(srv.Keys("/v1/posts")), srv.Stats().StoredWrites
	})
	return m, keys, stored
}

// TestRetryableHTTP measures failing GETs and POSTs with go-retryablehttp's
// defaults over resilient.New (before) and with NewRetryableClient (after).
func TestRetryableHTTP(t *testing.T) {
	for _, tc := range []sdkCase{
		// go-retryablehttp's 5 attempts over resilient: 6 + 6 + 1 + 1 + 1
		// on a fresh Transport, then 5 per call.
		{name: "Get", row: "GET, 500 on every attempt", route: resilienttest.RouteListPosts,
			step:   resilienttest.Respond(http.StatusInternalServerError),
			before: measurement{15, 510, seriesCalls}, after: measurement{6, 110, seriesCalls}},
		{name: "PostHonoring", row: "POST, 500 on every attempt, host honors keys", route: resilienttest.RouteCreatePost,
			step: resilienttest.Respond(http.StatusInternalServerError), honoring: true,
			before: measurement{15, 510, seriesCalls}, after: measurement{6, 110, seriesCalls},
			beforeKeys: 5 * seriesCalls, afterKeys: seriesCalls},
		{name: "PostIgnoring", row: "POST, stored then 500, host ignores keys", route: resilienttest.RouteCreatePost,
			step: resilienttest.FailAfterStoring(), ignoring: true,
			before: measurement{5, 500, seriesCalls}, after: measurement{1, 100, seriesCalls},
			beforeKeys: 5 * seriesCalls, afterKeys: seriesCalls, beforeStored: 5 * seriesCalls, afterStored: seriesCalls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, "go-retryablehttp", func(recipe bool) (measurement, int, int) {
				if recipe {
					return retryableSeries(t, tc, NewRetryableClient, true)
				}
				return retryableSeries(t, tc, retryableDefaults, false)
			})
		})
	}
}

// TestRetryableHTTPRetryMaxZeroAlone shows why the recipe also replaces
// CheckRetry: with RetryMax 0 alone, go-retryablehttp still takes its
// give-up path after resilient's 6 attempts, and the caller gets an error
// instead of the 500.
func TestRetryableHTTPRetryMaxZeroAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		c := retryablehttp.NewClient()
		c.HTTPClient.Transport = resilient.New(srv.Base())
		c.RetryMax = 0
		c.Logger = nil
		resp, err := c.Get(srv.URL + "/v1/posts")
		if resp != nil || err == nil || !strings.Contains(err.Error(), "giving up after 1 attempt(s)") {
			t.Errorf("got %v, %v; want no response and go-retryablehttp giving up", resp, err)
		}
		if got := srv.Hits("/v1/posts"); got != 6 {
			t.Errorf("%d server attempts, want 6", got)
		}
	})
}

// TestRetryableHTTPLogsNoSecret: a call through the recipe's client whose
// URL carries an API key in its query writes no log line with the key.
// go-retryablehttp's default Logger writes every request's URL whole to
// stderr, query included; resilient's WithLogger redacts it.
func TestRetryableHTTPLogsNoSecret(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newAltyaa(t, resilienttest.RouteListPosts, resilienttest.Respond(http.StatusInternalServerError))
		c := NewRetryableClient(srv.Base())
		var logged bytes.Buffer
		if l, ok := c.Logger.(*log.Logger); ok { // go-retryablehttp's default, shared: written to stderr
			out := l.Writer()
			l.SetOutput(&logged)
			defer l.SetOutput(out)
		} else if c.Logger != nil {
			t.Fatalf("Logger = %T, want nil or go-retryablehttp's default", c.Logger)
		}
		resp, err := c.Get(srv.URL + "/v1/posts?api_key=SECRET-key")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if strings.Contains(logged.String(), "SECRET") {
			t.Errorf("logged %q, want no line with the query's key", logged.String())
		}
	})
}
