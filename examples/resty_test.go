package examples

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/go-resty/resty/v2"
	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// restyWithRetries is how resty's documentation sets its retries up:
// SetRetryCount, and a condition that retries 429 and 5xx answers (by
// default resty retries only errors without a response).
func restyWithRetries(base http.RoundTripper) *resty.Client {
	return resty.New().
		SetTransport(resilient.New(base)).
		SetRetryCount(2).
		AddRetryCondition(func(r *resty.Response, _ error) bool {
			return r.StatusCode() == http.StatusTooManyRequests || r.StatusCode() >= 500
		})
}

// TestResty measures the attempts and keys of one GET and one POST against
// a persistent 500 with resty's retries over resilient.New (before) and
// with NewRestyClient (after).
func TestResty(t *testing.T) {
	for _, tc := range []struct {
		name, row, route, path string
		post                   bool
		before, after          int
		beforeKeys             int
	}{
		{"Get", "GET, 500 on every attempt", resilienttest.RouteListPosts, "/v1/posts", false, 18, 6, 0},
		{"Post", "POST, 500 on every attempt", resilienttest.RouteCreatePost, "/v1/posts", true, 18, 6, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measure := func(client func(base http.RoundTripper) *resty.Client) (attempts, keys int) {
				synctest.Test(t, func(t *testing.T) {
					srv := newAltyaa(t, tc.route, resilienttest.Respond(http.StatusInternalServerError))
					r := client(srv.Transport()).R()
					var resp *resty.Response
					var err error
					if tc.post {
						resp, err = r.SetBody(map[string]string{"text": "hello"}).Post(srv.URL + tc.path)
					} else {
						resp, err = r.Get(srv.URL + tc.path)
					}
					if err != nil {
						t.Fatalf("error %v, want the 500 response", err)
					}
					if resp.StatusCode() != http.StatusInternalServerError {
						t.Fatalf("status %d, want 500", resp.StatusCode())
					}
					attempts, keys = srv.Hits(tc.path), len(srv.Keys(tc.path))
				})
				return attempts, keys
			}
			before, beforeKeys := measure(restyWithRetries)
			after, afterKeys := measure(func(base http.RoundTripper) *resty.Client { return NewRestyClient(base) })
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
			checkDocRow(t, "resty", tc.row, before, after)
		})
	}
}
