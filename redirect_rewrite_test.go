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

// TestContextKeyFollowsRedirectThroughSigningMiddleware: the write a
// WithIdempotencyKey context names goes through a middleware that signs
// each request in its query, and is redirected with a 307 to another path
// of its host. The request http.Client follows it with is the same write,
// its signature set anew for its path: it carries the caller's key, or the
// caller's own retry of the write, sent under a key drawn anew, is stored
// twice.
func TestContextKeyFollowsRedirectThroughSigningMiddleware(t *testing.T) {
	store := &keyStore{stored: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/posts", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/posts/", http.StatusTemporaryRedirect)
	})
	mux.Handle("/posts/", store)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: Chain(New(nil, fastRetries), signedQuery)}
	writeTwiceUnderContextKey(t, client, srv.URL+"/posts", store)
}

// TestReportRedirectThroughSigningMiddleware: a call that http.Client
// redirects once, through a middleware that signs each request in its
// query, is reported whole: one redirect, two attempts.
func TestReportRedirectThroughSigningMiddleware(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b", http.StatusFound)
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: Chain(New(nil, fastRetries), signedQuery)}
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

// TestReportRedirectThroughHostRewritingMiddleware: a call that
// http.Client redirects once, through a middleware that sends each
// request to another host (a region's, for failover) and gives back its
// response with the request it was given, as http.Transport does, is
// reported whole: one redirect, two attempts. The request the Transport
// gets for the hop is the Location resolved against the caller's URL, its
// host rewritten: not the Location resolved against the URL of the
// response's Request.
func TestReportRedirectThroughHostRewritingMiddleware(t *testing.T) {
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
	client := &http.Client{Transport: Chain(New(nil, fastRetries), region)}
	var r Report
	req, _ := http.NewRequestWithContext(WithReport(context.Background(), &r), http.MethodGet, "http://api.example/a", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if r.Redirects != 1 || r.Attempts != 2 {
		t.Errorf("Report of a call redirected once = %+v, want 1 redirect, 2 attempts", r)
	}
}
