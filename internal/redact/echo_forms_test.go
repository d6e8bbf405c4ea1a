package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEchoesCredentialForms: a credential written in a form that the
// server reads otherwise than Go's url.ParseQuery or a plain split does is
// still the caller's, and a server's text that echoes it has it REDACTED:
// a quoted cookie-value (RFC 6265), echoed without its quotes; the
// auth-params of an Authorization header (OAuth 1.0a's oauth_token, Rails'
// Token token="…"), echoed without theirs; a query parameter after a ';',
// which some servers read as a separator (Rack before 3, Python's parse_qs
// before 3.9.2); a parameter whose name is escaped (%6Bey), as the server
// unescapes it.
func TestEchoesCredentialForms(t *testing.T) {
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		echo   string
	}{
		{"quoted cookie", "https://api.test/v1", http.Header{"Cookie": {`theme=dark; sid="SECRET-qcookie"`}}, "SECRET-qcookie"},
		{"OAuth 1.0a", "https://api.test/v1", http.Header{"Authorization": {`OAuth oauth_consumer_key="ckey-12345678", oauth_nonce="n1", oauth_token="370773112-SECRETtok"`}}, "370773112-SECRETtok"},
		{"OAuth 1.0a consumer key", "https://api.test/v1", http.Header{"Authorization": {`OAuth oauth_consumer_key="ckey-12345678", oauth_token="370773112-SECRETtok"`}}, "ckey-12345678"},
		{"Token token=", "https://api.test/v1", http.Header{"Authorization": {`Token token="SECRET-rails-tok"`}}, "SECRET-rails-tok"},
		{"query after ';'", "https://api.test/v1?a=1;api_key=SECRET-semi1", nil, "SECRET-semi1"},
		{"escaped name", "https://api.test/v1?%6Bey=SECRET-pctname", nil, "SECRET-pctname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			req := &http.Request{URL: u, Header: tc.header}
			in := "invalid credential " + tc.echo + " provided"
			if got, want := Echoes(in, req), "invalid credential REDACTED provided"; got != want {
				t.Errorf("Echoes(%q) = %q, want %q", in, got, want)
			}
		})
	}
	// What the auth-params hold besides credentials stays.
	u, _ := url.Parse("https://api.test/v1")
	req := &http.Request{URL: u, Header: http.Header{"Authorization": {`Digest username="Mufasa", realm="testrealm@host.com", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1"`}}}
	if in := "no resource at /dir/index.html"; Echoes(in, req) != in {
		t.Errorf("Echoes(%q) = %q, want it kept", in, Echoes(in, req))
	}
}
