package examples

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestRetryableHTTP measures the attempts and keys of one GET and one POST
// against a persistent 500 with go-retryablehttp's defaults over
// resilient.New (before) and with NewRetryableClient (after).
func TestRetryableHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, row, route, path string
		post                   bool
		before, after          int
		beforeKeys             int
	}{
		{"Get", "GET, 500 on every attempt", resilienttest.RouteListPosts, "/v1/posts", false, 30, 6, 0},
		{"Post", "POST, 500 on every attempt", resilienttest.RouteCreatePost, "/v1/posts", true, 30, 6, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(client func(base http.RoundTripper) *retryablehttp.Client, wantResponse bool) (attempts, keys int) {
				synctest.Test(t, func(t *testing.T) {
					srv := newAltyaa(t, tc.route, resilienttest.Respond(http.StatusInternalServerError))
					c := client(srv.Transport())
					c.Logger = nil // quiet tests; the recipe keeps the caller's logger
					var req *retryablehttp.Request
					var err error
					if tc.post {
						req, err = retryablehttp.NewRequest(http.MethodPost, srv.URL+tc.path, []byte(`{"text":"hello"}`))
						req.Header.Set("Content-Type", "application/json")
					} else {
						req, err = retryablehttp.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
					}
					if err != nil {
						t.Fatal(err)
					}
					resp, err := c.Do(req)
					if wantResponse {
						if err != nil {
							t.Fatalf("error %v, want the 500 response", err)
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte("service_unavailable")) {
							t.Errorf("got %d %q, want the 500 and its envelope", resp.StatusCode, body)
						}
					} else if err == nil || !strings.Contains(err.Error(), "giving up after 5 attempt(s)") {
						t.Fatalf("error %v, want go-retryablehttp giving up", err)
					}
					attempts, keys = srv.Hits(tc.path), len(srv.Keys(tc.path))
				})
				return attempts, keys
			}
			before, beforeKeys := measure(func(base http.RoundTripper) *retryablehttp.Client {
				c := retryablehttp.NewClient()
				c.HTTPClient.Transport = resilient.New(base)
				return c
			}, false)
			after, afterKeys := measure(func(base http.RoundTripper) *retryablehttp.Client { return NewRetryableClient(base) }, true)
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts per call: defaults %d, recipe %d; want %d, %d", before, after, tc.before, tc.after)
			}
			wantAfterKeys := 0
			if tc.post {
				wantAfterKeys = 1
			}
			if beforeKeys != tc.beforeKeys || afterKeys != wantAfterKeys {
				t.Errorf("distinct idempotency keys: defaults %d, recipe %d; want %d, %d", beforeKeys, afterKeys, tc.beforeKeys, wantAfterKeys)
			}
			checkDocRow(t, "go-retryablehttp", tc.row, before, after)
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
		c.HTTPClient.Transport = resilient.New(srv.Transport())
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
