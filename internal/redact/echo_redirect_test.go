package redact

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// redirectChain returns the last of n requests, each with its own api_key,
// key-<i>-secret, that http.Client would have made following redirects:
// the Response of each names the request before it.
func redirectChain(n int) *http.Request {
	var req *http.Request
	for i := range n {
		u, _ := url.Parse(fmt.Sprintf("https://api.example.com/v1/%d?api_key=key-%d-secret", i, i))
		next := &http.Request{URL: u, Header: http.Header{}}
		if req != nil {
			next.Response = &http.Response{Request: req}
		}
		req = next
	}
	return req
}

// TestEchoesRedirected: a server's text that echoes the credential of a
// request that led to req by a redirect (a query's api_key, which the
// request that follows the redirect has not) has it REDACTED, up to
// maxRedirectEchoes requests back; a chain that loops ends there too, and
// a text with nothing to replace costs no allocation.
func TestEchoesRedirected(t *testing.T) {
	req := redirectChain(maxRedirectEchoes + 3) // requests 0 … 18, req the last
	for _, tc := range []struct{ in, want string }{
		{"no key-18-secret", "no REDACTED"},                        // req's own
		{"no key-17-secret", "no REDACTED"},                        // the request before it
		{"no key-2-secret", "no REDACTED"},                         // maxRedirectEchoes back
		{"no key-1-secret", "no key-1-secret"},                     // past the bound
		{"/v1/keys/key-9-secret/usage", "/v1/keys/REDACTED/usage"}, // a path the redirect built
	} {
		if got := Echoes(tc.in, req); got != tc.want {
			t.Errorf("Echoes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Redirected("no key-18-secret, key-17-secret", req); got != "no key-18-secret, REDACTED" {
		t.Errorf("Redirected = %q, want req's own credential kept, the earlier one's REDACTED", got)
	}
	if n := testing.AllocsPerRun(100, func() { Echoes("7f3c2a9e-1b4d-4c8e-9f2a-123456789abc", req) }); n != 0 {
		t.Errorf("Echoes(request id) after redirects allocates %v times, want 0", n)
	}
	loop := redirectChain(3)
	loop.Response.Request.Response.Request.Response = &http.Response{Request: loop} // built by hand
	if got := Echoes("no key-0-secret", loop); got != "no REDACTED" {
		t.Errorf("Echoes on a loop = %q, want %q", got, "no REDACTED")
	}
	if got := Echoes("nothing to see here", loop); got != "nothing to see here" {
		t.Errorf("Echoes on a loop = %q, want the text as it is", got)
	}
}
