package redact

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoesJWTHoldingCallersCredential: a JSON Web Token that a server's
// text names is REDACTED whole, whoever's it is. Since the caller's
// credentials are replaced before the tokens the text names, one that a
// token holds from its start or across one of its periods (the header
// that all HS256 tokens share, a header.payload sent apart from its
// signature, an unsecured token) broke the token's shape, and the rest
// of it, its signature included, stayed in the text.
func TestEchoesJWTHoldingCallersCredential(t *testing.T) {
	const (
		hdr = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
		pay = "eyJzdWIiOiIxMjM0NTY3ODkwIn0"
		sig = "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
		jwt = hdr + "." + pay + "." + sig
	)
	for _, tc := range []struct {
		name  string
		h     http.Header
		query string
	}{
		{"a key that is a token's header", http.Header{"X-Api-Key": {hdr}}, ""},
		{"a cookie of header.payload", http.Header{"Cookie": {"hp=" + hdr + "." + pay}}, ""},
		{"a header of payload.signature", http.Header{"X-Jwt-Part": {pay + "." + sig}}, ""},
		{"a query of header.payload", http.Header{}, "token=" + hdr + "." + pay + "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: http.MethodGet, Header: tc.h,
				URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: tc.query}}
			for _, s := range []string{"invalid token " + jwt, "token=" + jwt + ". Retry with " + jwt} {
				got := Echoes(s, req)
				for _, part := range []string{hdr, pay, sig} {
					if strings.Contains(got, part) {
						t.Errorf("Echoes(%q) = %q keeps a part of the token", s, got)
						break
					}
				}
			}
		})
	}
}

// TestEchoesJWTAfterCallersCredential: a JSON Web Token right after a
// caller's credential that ends with a character no token holds
// ("sk_…==eyJ…") was found there, where that character set it apart;
// replaced first, the credential left its placeholder in front of the
// token, which then read as a part of a longer word, and was kept.
func TestEchoesJWTAfterCallersCredential(t *testing.T) {
	const (
		key = "sk_live_4eC39HqLyjW=="
		jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	)
	req := &http.Request{Method: http.MethodGet, Header: http.Header{"X-Api-Key": {key}},
		URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}}
	s := "refused: " + key + jwt
	if got := Echoes(s, req); strings.Contains(got, jwt[len(jwt)-20:]) || strings.Contains(got, key) {
		t.Errorf("Echoes(%q) = %q keeps the token", s, got)
	}
}
