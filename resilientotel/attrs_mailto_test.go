package resilientotel

import (
	"net/http"
	"net/url"
	"testing"
)

// TestRedactedURLOpaqueSchemeKept: url.full of a request for an opaque URL
// of a scheme registered for one ("mailto:support@vendor.example", which
// net/http refuses, but whose span is recorded) lost its scheme, read as
// a key given as a user name ("KEY:@api.example.com"), and showed the
// address as user information: "REDACTED:REDACTED@vendor.example". A
// mailto URL's address is no user information (RFC 6068); another
// registered scheme keeps its name and has its user information REDACTED.
func TestRedactedURLOpaqueSchemeKept(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"mailto:support@vendor.example", "mailto:support@vendor.example"},
		{"mailto:support@vendor.example?body=x", "mailto:support@vendor.example"},
		{"sip:alice:SECRET-pw-1@pbx.example", "sip:REDACTED:REDACTED@pbx.example"},
		{"key-3ax6xnjp29jd6SECRET:@api.example.com/v1", "REDACTED:REDACTED@api.example.com/v1"},
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
