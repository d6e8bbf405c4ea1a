package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEchoesOpaqueQueryAsRawQuery: a query written in an opaque URL
// ("//host/oauth/token?code=…", which net/http sends on the request line
// as it is) is the query the server reads, as RawQuery's: the credentials
// Echoes finds in RawQuery it finds there too, an OAuth authorization
// code and a key written with '+' for its spaces (echoed decoded) among
// them, and it leaves a value that carries none as it is.
func TestEchoesOpaqueQueryAsRawQuery(t *testing.T) {
	for _, tc := range []struct{ rest, in, want string }{
		{"/oauth/token?code=AUTHCODE12345678&redirect_uri=x", "invalid code AUTHCODE12345678", "invalid code REDACTED"},
		{"/cb?state=s1&code=AUTHCODE12345678", "code AUTHCODE12345678 expired", "code REDACTED expired"},
		{"/v1/me?api_key=sk+live+plus+12", "Invalid API key: sk live plus 12", "Invalid API key: REDACTED"},
		{"/v1/promos?code=PROMO2024SUMMER&page=2", "promo PROMO2024SUMMER expired", "promo PROMO2024SUMMER expired"},
		{"/v1/search?q=golang+generics+tutorial", "No results for golang generics tutorial", "No results for golang generics tutorial"},
	} {
		u, err := url.Parse("https://api.test" + tc.rest)
		if err != nil {
			t.Fatal(err)
		}
		if got := Echoes(tc.in, &http.Request{URL: u, Header: http.Header{}}); got != tc.want {
			t.Errorf("Echoes(%q) with RawQuery %q = %q, want %q", tc.in, u.RawQuery, got, tc.want)
		}
		opaque := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Opaque: "//api.test" + tc.rest}, Header: http.Header{}}
		if got := Echoes(tc.in, opaque); got != tc.want {
			t.Errorf("Echoes(%q) with Opaque %q = %q, want %q", tc.in, opaque.URL.Opaque, got, tc.want)
		}
	}
}
