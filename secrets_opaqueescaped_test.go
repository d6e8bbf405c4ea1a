package resilient

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoOfEscapedOpaquePathCredentialRedacted: an Opaque is how
// net/http's documentation says to send a path escaped as it is written
// ("/bot123456%3A…/getMe"); the server decodes it, and its "no route"
// message echoes the bot's token decoded. Echoes looked for the
// credentials of the Opaque's path only as escaped, and the token stayed
// in APIError.Message, where the same URL parsed (its Path decoded, its
// RawPath escaped) has it REDACTED.
func TestEchoOfEscapedOpaquePathCredentialRedacted(t *testing.T) {
	const token = "AAH-escaped-SECRET-tok"
	parsed, err := url.Parse("https://api.telegram.test/bot123456%3A" + token + "/getMe")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		u    *url.URL
	}{
		{"opaque, escaped", &url.URL{Scheme: "https", Host: "api.telegram.test", Opaque: "/bot123456%3A" + token + "/getMe"}},
		{"opaque with its authority, escaped", &url.URL{Scheme: "https", Host: "api.telegram.test", Opaque: "//api.telegram.test/bot123456%3A" + token + "/getMe"}},
		{"parsed, as before", parsed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := echoedAPIError(t, tc.u, http.StatusNotFound, func(*http.Request) string {
				return `{"ok":false,"error_code":404,"message":"No route for GET /bot123456:` + token + `/getMe"}`
			})
			if strings.Contains(e.Message, token) || strings.Contains(e.Error(), token) {
				t.Errorf("APIError.Message = %q; want the bot's token REDACTED", e.Message)
			}
		})
	}
}
