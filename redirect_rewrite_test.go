package resilient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// apiKeyInQuery is a caller's middleware outside the Transport that adds
// the API key to each request's query, as APIs authenticated by a query
// parameter want: it sends a clone, whose Response (set by http.Client on
// a request that follows a redirect) comes along.
func apiKeyInQuery(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(req.Context())
		q := r.URL.Query()
		q.Set("key", "k1")
		r.URL.RawQuery = q.Encode()
		return next.RoundTrip(r)
	})
}

// TestContextKeyFollowsRedirectThroughQueryMiddleware: the write a
// WithIdempotencyKey context names goes through a middleware that adds
// the API key to its query, and is redirected with a 307 to another path
// of its host, as in TestContextKeyFollowsRedirectOnItsHost. The request
// http.Client follows it with is the same write, its query added by the
// middleware again: it carries the caller's key, or the caller's own
// retry of the write, sent under a key drawn anew, is stored twice.
func TestContextKeyFollowsRedirectThroughQueryMiddleware(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/posts", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/posts/", http.StatusTemporaryRedirect)
	})
	mux.Handle("/posts/", store)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: Chain(New(nil, fastRetries), apiKeyInQuery)}
	writeTwiceUnderContextKey(t, client, srv.URL+"/posts", store)
}

// TestReportRedirectThroughQueryMiddleware: a call that http.Client
// redirects once, through a middleware that adds the API key to each
// request's query, is reported whole: one redirect, two attempts.
func TestReportRedirectThroughQueryMiddleware(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b", http.StatusFound)
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: Chain(New(nil, fastRetries), apiKeyInQuery)}
	var r Report
	req, _ := http.NewRequestWithContext(WithReport(context.Background(), &r), http.MethodGet, srv.URL+"/a", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if r.Redirects != 1 || r.Attempts != 2 {
		t.Errorf("Report of a call redirected once = %+v, want 1 redirect, 2 attempts", r)
	}
}
