package resilient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// echoSecret is the credential the echo tests send: no known token
// shape, so that only what the caller sent tells it is one.
const echoSecret = "k3y-0123456789abcdef"

// keyRedirectServer starts a server that answers the first request of a
// call, GET /v1/usage, with a 302 to a path built from the key the caller
// sent (in api_key or X-Api-Key), /v1/keys/<key>/usage, and that path as
// next says: next nil answers a 404 whose envelope repeats the key, in its
// code and its message. It counts the requests it gets.
func keyRedirectServer(t *testing.T, next http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/v1/usage" {
			key := r.URL.Query().Get("api_key")
			if key == "" {
				key = r.Header.Get("X-Api-Key")
			}
			http.Redirect(w, r, "/v1/keys/"+key+"/usage", http.StatusFound)
			return
		}
		if next != nil {
			next(w, r)
			return
		}
		key := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/keys/"), "/usage")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"code":"unknown_key_` + key + `","message":"no usage for key ` + key + `"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// keyRequest returns a GET of srv's /v1/usage that sends echoSecret as
// where says: in the query ("query", which the request that follows the
// redirect does not have) or in X-Api-Key ("header", which it does).
func keyRequest(t *testing.T, srv *httptest.Server, where string) *http.Request {
	t.Helper()
	target := srv.URL + "/v1/usage"
	if where == "query" {
		target += "?api_key=" + echoSecret
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if where == "header" {
		req.Header.Set("X-Api-Key", echoSecret)
	}
	return req
}

// TestAttemptPathRedactsCredentialEchoedByRedirect: a server that
// redirects to a path it built from the credential the caller sent
// (/v1/keys/<key>/usage) makes http.Client send that path: the record of
// the attempt that follows the redirect has it REDACTED, as the caller's
// credential wherever a record quotes the server's text, its error code
// included.
func TestAttemptPathRedactsCredentialEchoedByRedirect(t *testing.T) {
	for _, where := range []string{"query", "header"} {
		t.Run(where, func(t *testing.T) {
			srv, hits := keyRedirectServer(t, nil)
			var got collector[Attempt]
			cl := loopbackClient(t, WithObserver(got.add))
			resp, err := cl.Do(keyRequest(t, srv, where))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			as := got.all()
			if len(as) != 2 || hits.Load() != 2 || resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%d records of %d requests, status %d; want 2 of 2 (the redirect and the 404)", len(as), hits.Load(), resp.StatusCode)
			}
			if a := as[1]; strings.Contains(a.Path, echoSecret) || a.Path != "/v1/keys/REDACTED/usage" {
				t.Errorf("Attempt.Path = %q: the credential the caller sent, echoed by the redirect, not REDACTED", a.Path)
			}
			if a := as[1]; strings.Contains(a.Code, echoSecret) {
				t.Errorf("Attempt.Code = %q: the credential the caller sent before the redirect, not REDACTED", a.Code)
			}
		})
	}
}

// TestAPIErrorRedactsCredentialEchoedByRedirect: the envelope of the
// answer to a request that followed a redirect may echo the credential
// the caller sent on the first request only (its query, which the
// redirect drops): the APIError a Classifier gets, and ParseError's of the
// response the caller gets, have it REDACTED.
func TestAPIErrorRedactsCredentialEchoedByRedirect(t *testing.T) {
	srv, hits := keyRedirectServer(t, nil)
	var seen collector[*APIError]
	cl := loopbackClient(t, WithClassifier(func(_ *http.Response, apiErr *APIError, _ error, def Class) Class {
		if apiErr != nil {
			seen.add(apiErr)
		}
		return def
	}))
	resp, err := cl.Do(keyRequest(t, srv, "query"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	errs := append(seen.all(), ParseError(resp))
	if len(errs) != 2 || hits.Load() != 2 {
		t.Fatalf("%d APIErrors of %d requests, want the Classifier's and ParseError's of 2", len(errs), hits.Load())
	}
	for i, e := range errs {
		if e == nil || e.Code == "" {
			t.Fatalf("APIError %d = %+v, want one with the envelope's code", i, e)
		}
		if s := e.Error(); strings.Contains(s, echoSecret) {
			t.Errorf("APIError %q: the credential the caller sent before the redirect, echoed by the server, not REDACTED", s)
		}
	}
}

// TestErrorURLRedactsCredentialEchoedByRedirect: a call that follows a
// redirect to a path built from the caller's credential, and fails there
// on an answer it cannot read, returns an *Error whose URL has the credential
// REDACTED, as Attempt.Path has it.
func TestErrorURLRedactsCredentialEchoedByRedirect(t *testing.T) {
	srv, hits := keyRedirectServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			// An answer net/http cannot read, which it does not resend
			// (as it resends on a reused connection closed at once).
			conn.Write([]byte("HTTP/1.1 abc\r\n\r\n"))
			conn.Close()
		}
	})
	var got collector[Attempt]
	cl := loopbackClient(t, WithMaxRetries(0), WithObserver(got.add))
	resp, err := cl.Do(keyRequest(t, srv, "query"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("the call got an answer, want the error of a malformed one")
	}
	var re *Error
	if !errors.As(err, &re) || hits.Load() != 2 {
		t.Fatalf("error %v after %d requests, want a *resilient.Error after 2", err, hits.Load())
	}
	if strings.Contains(re.Error(), echoSecret) {
		t.Errorf("Error = %q: the credential the caller sent, echoed by the redirect, not REDACTED", re.Error())
	}
	if as := got.all(); len(as) != 2 || !strings.HasSuffix(re.URL, as[1].Path) {
		t.Errorf("Error.URL = %q, records %+v: want the path of the last record", re.URL, as)
	}
}
