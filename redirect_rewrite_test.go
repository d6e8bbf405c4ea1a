package resilient

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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

// signedQuery is a caller's middleware outside the Transport that signs
// each request in its query, as APIs authenticated by a signed query want:
// it sends a clone with a sig parameter, an HMAC of the request's method
// and path, which differs from one path to another.
func signedQuery(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(req.Context())
		mac := hmac.New(sha256.New, []byte("secret"))
		mac.Write([]byte(r.Method + " " + r.URL.Path))
		q := r.URL.Query()
		q.Set("sig", hex.EncodeToString(mac.Sum(nil)))
		r.URL.RawQuery = q.Encode()
		return next.RoundTrip(r)
	})
}

// queryMiddlewares are the middlewares of the tests below, by name.
var queryMiddlewares = []struct {
	name string
	mw   func(http.RoundTripper) http.RoundTripper
}{
	{"API key in the query", apiKeyInQuery},
	{"signed query", signedQuery},
}

// TestContextKeyFollowsRedirectThroughQueryMiddleware: the write a
// WithIdempotencyKey context names goes through a middleware that sets a
// parameter of its query (the API key, or a signature of its path), and
// is redirected with a 307 to another path of its host, as in
// TestContextKeyFollowsRedirectOnItsHost. The request http.Client follows
// it with is the same write, its query set by the middleware again: it
// carries the caller's key, or the caller's own retry of the write, sent
// under a key drawn anew, is stored twice.
func TestContextKeyFollowsRedirectThroughQueryMiddleware(t *testing.T) {
	for _, m := range queryMiddlewares {
		t.Run(m.name, func(t *testing.T) {
			store := &keyStore{stored: map[string]string{}}
			mux := http.NewServeMux()
			mux.HandleFunc("/posts", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/posts/", http.StatusTemporaryRedirect)
			})
			mux.Handle("/posts/", store)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			client := &http.Client{Transport: Chain(New(nil, fastRetries), m.mw)}
			writeTwiceUnderContextKey(t, client, srv.URL+"/posts", store)
		})
	}
}

// TestReportRedirectThroughMiddleware: a call that http.Client redirects
// once, through a middleware that sets a parameter of each request's
// query, or one that sends each request to another host (a region's, for
// failover) and gives back its response with the request it was given,
// as http.Transport does, is reported whole: one redirect, two attempts.
// Through the last, the request the Transport gets for the hop is the
// Location resolved against the caller's URL, its host rewritten: not the
// Location resolved against the URL of the response's Request.
func TestReportRedirectThroughMiddleware(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b", http.StatusFound)
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	region := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			r := req.Clone(req.Context())
			r.URL.Host = srv.Listener.Addr().String()
			resp, err := next.RoundTrip(r)
			if resp != nil {
				resp.Request = req
			}
			return resp, err
		})
	}
	cases := []struct {
		name string
		mw   func(http.RoundTripper) http.RoundTripper
		url  string // the caller's
	}{{"host rewritten", region, "http://api.example/a"}}
	for _, m := range queryMiddlewares {
		cases = append(cases, struct {
			name string
			mw   func(http.RoundTripper) http.RoundTripper
			url  string
		}{m.name, m.mw, srv.URL + "/a"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Transport: Chain(New(nil, fastRetries), tc.mw)}
			var r Report
			req, _ := http.NewRequestWithContext(WithReport(context.Background(), &r), http.MethodGet, tc.url, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if r.Redirects != 1 || r.Attempts != 2 {
				t.Errorf("Report of a call redirected once = %+v, want 1 redirect, 2 attempts", r)
			}
		})
	}
}
