package resilientotel

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedactedURLHostlessAndKeyScheme: url.full showed the password of a
// URL one slash short or long ("https:/alice:pw@host", which url.Parse
// reads as a path), and the key of one whose user name url.Parse read as
// its scheme ("KEY:@api.example.com", a key given as Basic
// authentication's user name, the "https://" left out). Each has its
// credential left out, as the Transport's records have it.
func TestRedactedURLHostlessAndKeyScheme(t *testing.T) {
	for _, tc := range []struct{ raw, secret string }{
		{"https:/alice:SECRET-pw-1@api.example.com/v1", "SECRET-pw-1"},
		{"https:///alice:SECRET-pw-1@api.example.com/v1", "SECRET-pw-1"},
		{"key-3ax6xnjp29jd6SECRET:@api.example.com/v1", "key-3ax6xnjp29jd6secret"},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactedURL(&http.Request{URL: u}); strings.Contains(got, tc.secret) || !strings.Contains(got, "api.example.com/v1") {
			t.Errorf("redactedURL(%q) = %q; want the host and path, without %q", tc.raw, got, tc.secret)
		}
	}
}

// TestRedactedURLPasswordBeforeQuery: url.full showed the start of a
// password written unescaped with a '?' or a '#' in it after a user name
// that url.Parse read as the scheme ("alice:pa?SECRET@host/v1", the
// Opaque "pa"), or in a URL one slash short ("https:/alice:pa?…", the
// path "/alice:pa"), as the Transport's records did.
func TestRedactedURLPasswordBeforeQuery(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"alice:pa?SECRET-pw-1@api.example.com/v1", "REDACTED:REDACTED@api.example.com/v1"},
		{"alice:pa#SECRET-pw-1@api.example.com/v1", "REDACTED:REDACTED@api.example.com/v1"},
		{"https:/alice:pa?SECRET-pw-1@api.example.com/v1", "https:///REDACTED"},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactedURL(&http.Request{URL: u}); got != tc.want {
			t.Errorf("redactedURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
