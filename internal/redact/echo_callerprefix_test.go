package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
)

// TestEchoesCallersCredentialWithinAnother: of two credentials of the
// caller's, one the first bytes of the other (two cookies, two query
// parameters, two headers, the user name and the password of a Basic
// authorization), the longer one that a server echoes is REDACTED whole.
// The shorter one, looked for first (the cookie and the parameter before,
// the header the map's order put first, the user name before the
// password), was replaced within the longer one, whose rest stayed in the
// text and was no longer found.
func TestEchoesCallersCredentialWithinAnother(t *testing.T) {
	const short, long = "abcdefgh1234", "abcdefgh1234XYZWVUTS"
	u := func(q string) *url.URL { return &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: q} }
	for name, req := range map[string]*http.Request{
		"cookies": {URL: u(""), Header: http.Header{"Cookie": {"a=" + short + "; b=" + long}}},
		"query":   {URL: u("api_key=" + short + "&api_secret=" + long), Header: http.Header{}},
		"headers": {URL: u(""), Header: http.Header{"X-Api-Key": {short}, "X-Api-Secret": {long}}},
		"basic": {URL: u(""), Header: http.Header{"Authorization": {"Basic " +
			base64.StdEncoding.EncodeToString([]byte(short+":"+long))}}},
		"header and query": {URL: u("api_secret=" + long), Header: http.Header{"X-Api-Key": {short}}},
		"query and header": {URL: u("api_key=" + short), Header: http.Header{"X-Api-Secret": {long}}},
	} {
	orders:
		for range 20 { // the headers in each of the map's orders
			for _, s := range []string{"secret " + long + " refused", "key " + short + ", secret " + long} {
				want := "secret REDACTED refused"
				if s[0] == 'k' {
					want = "key REDACTED, secret REDACTED"
				}
				if got := Echoes(s, req); got != want {
					t.Errorf("%s: Echoes(%q) = %q, want %q", name, s, got, want)
					break orders
				}
			}
		}
	}
}
