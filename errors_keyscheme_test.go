package resilient

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestKeyAsSchemeRedacted: an API that takes its key as the user name of
// Basic authentication, with an empty or a dummy password, is configured
// as "KEY:@api.example.com" or "KEY:x@api.example.com"; a caller who left
// out the "https://" sends that. url.Parse reads a key of letters, digits
// and '-' as a scheme ("KEY:" as "mailto:"), and the Transport's error
// (its URL, net/http's `unsupported protocol scheme "key"`, an
// http.Client's quoted URL), Attempt.Err and the log record showed the
// key, as did errors quoting the value (url.Parse's own `parse "…\n"`, of a value read with its line's end). A
// scheme net/http does not speak, followed by user information, is
// such a user name; http and https followed by user information ("https:
// user:token@host", a URL missing its slashes) stay schemes.
func TestKeyAsSchemeRedacted(t *testing.T) {
	const key = "key-3ax6xnjp29jd6SECRET"
	for _, raw := range []string{
		key + ":@api.example.com/v1",
		key + ":x@api.example.com/v1",
		"api:" + key + "@api.example.com/v1",
	} {
		u, err := url.Parse(raw)
		if err != nil || u.Opaque == "" {
			t.Fatalf("url.Parse(%q) = %#v, %v; want an opaque URL", raw, u, err)
		}
		for _, b := range hostlessBases(raw) {
			req := newRequest(t, t.Context(), http.MethodGet, "https://placeholder.test/", nil)
			req.URL, req.Host = u, ""
			outs := secretOutputs(t, b.base, req)
			for _, what := range slices.Sorted(maps.Keys(outs)) {
				if strings.Contains(strings.ToLower(outs[what]), strings.ToLower(key)) {
					t.Errorf("%s, %s: %s shows the key: %s", raw, b.name, what, outs[what])
				}
			}
		}
		// url.Parse's own error, quoting the value: one read from a file
		// with its line's end.
		_, perr := url.Parse(raw + "\n")
		if got := redactText(perr.Error()); strings.Contains(got, key) || !strings.Contains(got, "api.example.com") {
			t.Errorf("redactText(%q) = %q; want the host without the key", perr, got)
		}
		if got := redactErr(&url.Error{Op: "Get", URL: raw, Err: errors.New("unsupported protocol scheme")}); strings.Contains(got, key) {
			t.Errorf("a *url.Error quoting %q reads %q", raw, got)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"https:alice:SECRET@api.example.com/v1", "https:api.example.com/v1"},
		{"http:SECRET@api.example.com", "http:api.example.com"},
		{"urn:isbn:0451450523", "urn:isbn:0451450523"},
	} {
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
