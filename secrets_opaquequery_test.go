package resilient

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoOfOpaqueQueryCredentialRedacted: a URL whose Opaque carries a
// query ("//api.test/v1/me?api_key=…", set so to send the request line
// verbatim, as net/http's RequestURI does, query included) has the key's
// echo by the server REDACTED in APIError.Message, as it is for the same
// query in RawQuery or written into Path: the records drop that query
// (see redact.Opaque), but Echoes looked for the credentials of the
// Opaque's path only, cut at its '?'.
func TestEchoOfOpaqueQueryCredentialRedacted(t *testing.T) {
	const key = "sk_live_0paque-qu3ry-KEY"
	for _, tc := range []struct {
		name string
		u    *url.URL
	}{
		{"opaque with a path", &url.URL{Scheme: "https", Host: "api.test", Opaque: "//api.test/v1/me?api_key=" + key}},
		{"opaque, a path only", &url.URL{Scheme: "https", Host: "api.test", Opaque: "/v1/me?api_key=" + key}},
		{"opaque without a path", &url.URL{Scheme: "https", Host: "api.test", Opaque: "//api.test?api_key=" + key}},
		{"in RawQuery, as before", &url.URL{Scheme: "https", Host: "api.test", Path: "/v1/me", RawQuery: "api_key=" + key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := echoedAPIError(t, tc.u, http.StatusUnauthorized, func(*http.Request) string {
				return `{"error":{"code":"invalid_api_key","message":"Invalid API key: ` + key + `"}}`
			})
			if strings.Contains(e.Message, key) || strings.Contains(e.Error(), key) {
				t.Errorf("APIError.Message = %q; want the query's key REDACTED", e.Message)
			}
		})
	}
}
