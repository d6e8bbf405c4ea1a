package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// credentialJWT is a JSON Web Token that the caller's credentials of the
// tests below hold after a separator.
const credentialJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

// TestEchoesCallersCredentialHoldingToken: a credential of the caller's
// that holds a JSON Web Token after a separator ("AKIA1234:eyJ…", a
// tenant's id and its token), or a word a server's text names as a token
// after "Bearer " within it, that a server echoes is REDACTED whole. The
// tokens were replaced where they stood before the caller's credentials
// were looked for, in a text that then no longer held the credential
// whole: the part before the token (and after it) stayed.
func TestEchoesCallersCredentialHoldingToken(t *testing.T) {
	u := func(q string) *url.URL { return &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: q} }
	for _, tc := range []struct{ name, key, rest string }{
		{"a key then a token", "AKIA1234:" + credentialJWT, "AKIA1234"},
		{"a token within", "AKIA1234:" + credentialJWT + ":tail5678", "tail5678"},
		{"a key then a part of a token", "AKIA1234|" + credentialJWT[:30], "AKIA1234"},
		{"a word after Bearer within", "k9Z2x7-Bearer tok_12345678", "k9Z2x7"},
	} {
		in := "invalid key " + tc.key + " refused"
		if strings.HasSuffix(tc.key, credentialJWT[:30]) {
			in = "invalid key " + tc.key + credentialJWT[30:] + " refused" // the token whole after the key
		}
		for where, req := range map[string]*http.Request{
			"header": {URL: u(""), Header: http.Header{"X-Api-Key": {tc.key}}},
			"query":  {URL: u("api_key=" + url.QueryEscape(tc.key)), Header: http.Header{}},
			"basic": {URL: u(""), Header: http.Header{"Authorization": {"Basic " +
				base64.StdEncoding.EncodeToString([]byte("svc:"+tc.key))}}},
			"cookie": {URL: u(""), Header: http.Header{"Cookie": {"a=b; sid=" + strings.ReplaceAll(tc.key, " ", "")}}},
		} {
			s := in
			if where == "cookie" {
				s = strings.ReplaceAll(s, tc.key, strings.ReplaceAll(tc.key, " ", "")) // a cookie holds no space
			}
			if got, want := Echoes(s, req), "invalid key REDACTED refused"; got != want {
				t.Errorf("%s, %s: Echoes(%q) = %q, want %q", tc.name, where, s, got, want)
			}
			if got := Echoes(strings.ToUpper(s), req); strings.Contains(got, strings.ToUpper(tc.rest)) {
				t.Errorf("%s, %s: Echoes(%q) = %q keeps %q", tc.name, where, strings.ToUpper(s), got, strings.ToUpper(tc.rest))
			}
		}
	}
}

// TestEchoesTokenTouchingCallersCredential: a credential of the caller's
// that ends where a token the text names begins, or the other way round,
// is REDACTED as is the token, each by a Placeholder of its own: they
// cover no byte in common.
func TestEchoesTokenTouchingCallersCredential(t *testing.T) {
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"},
		Header: http.Header{"X-Api-Key": {"AKIA1234:"}, "X-Api-Secret": {".sfx_9876"}}}
	in := "invalid key AKIA1234:" + credentialJWT + " and " + credentialJWT + ".sfx_9876 refused"
	if got, want := Echoes(in, req), "invalid key REDACTEDREDACTED and REDACTEDREDACTED refused"; got != want {
		t.Errorf("Echoes(%q) = %q, want %q", in, got, want)
	}
}
