package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestOpaquePathForms: opaquePath reads the path of every form an Opaque
// takes, with a query written in it kept (net/http sends it on the request
// line as it is), and "" where there is none.
func TestOpaquePathForms(t *testing.T) {
	for _, tc := range []struct{ opaque, want string }{
		{"//api.test/v1/me?api_key=k", "/v1/me?api_key=k"},
		{"//api.test?api_key=k", "?api_key=k"},
		{"/v1/me?api_key=k", "/v1/me?api_key=k"},
		{"/v1/me", "/v1/me"},
		{"api.test/v1/me", "/v1/me"},
		{"//api.test/v1/me#/frag?x", "/v1/me"},
		{"//api.test", ""},
		{"x@y", ""},
		{"#frag", ""},
		{"//", ""},
		{"", ""},
	} {
		if got := opaquePath(tc.opaque); got != tc.want {
			t.Errorf("opaquePath(%q) = %q, want %q", tc.opaque, got, tc.want)
		}
	}
}

// TestEchoesOpaqueQuery: Echoes finds a credential of a query written in
// an opaque URL as it finds one in RawQuery, and leaves a text that repeats
// a parameter that carries none as it is.
func TestEchoesOpaqueQuery(t *testing.T) {
	for _, tc := range []struct{ opaque, in, want string }{
		{"//api.test/v1/me?api_key=sk_live_0paque9Q", "Invalid API key: sk_live_0paque9Q", "Invalid API key: REDACTED"},
		{"//api.test?access_token=tok_0paque9Q77", "token tok_0paque9Q77 expired", "token REDACTED expired"},
		{"//api.test/search?q=golang-generics", "No results for golang-generics", "No results for golang-generics"},
		{"/v1/users/12345678?page=2", "user 12345678 has no page 2", "user 12345678 has no page 2"},
	} {
		req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Opaque: tc.opaque}, Header: http.Header{}}
		if got := Echoes(tc.in, req); got != tc.want {
			t.Errorf("Echoes(%q) with Opaque %q = %q, want %q", tc.in, tc.opaque, got, tc.want)
		}
	}
}
