package resilient

import (
	"strings"
	"testing"
)

// TestServiceNamePasswordHidden: redact.Opaque takes a "port" that
// is the name of a scheme's service ("api.example.com:https", which
// net.Dial reads as 443) for a host's, no password's start; but a password
// that begins with such a word and holds a '/', a '?' or a '#' written
// unescaped ("alice:https/pw@proxy:3128", an authority url.Parse cannot
// read) was then shown whole. Where an '@' that ends a password follows,
// the word makes no host of it, as a port of digits before parameters
// does not (TestPortParamsPasswordHidden).
func TestServiceNamePasswordHidden(t *testing.T) {
	for _, tc := range []struct{ in, secret, want string }{
		{"http://alice:https/SECRET-proxy-pw@proxy.test:3128", "SECRET-proxy-pw", "http://proxy.test:3128"},
		{"https://alice:http/SECRET-pw@api.example.com/v1", "SECRET-pw", "https://api.example.com/v1"},
		{"https://alice:HTTPS?SECRET-pw@api.example.com/v1", "SECRET-pw", "https://api.example.com/v1"},
		{"https://alice:https#SECRET-pw@api.example.com/v1", "SECRET-pw", "https://api.example.com/v1"},
		// A host on its service's port keeps its name.
		{"https://api.example.com:https/v1", "", "https://api.example.com:https/v1"},
		{"https://api.example.com:https/users/@alice", "", "https://api.example.com:https/users/@alice"},
	} {
		for _, text := range []string{"proxyconnect " + tc.in + " failed", `parse "` + tc.in + `": invalid port`} {
			got := redactText(text)
			if tc.secret != "" && strings.Contains(got, tc.secret) {
				t.Errorf("redactText(%q) = %q; want the password %q hidden", text, got, tc.secret)
			}
			if tc.secret != "" && strings.Contains(got, "alice:") {
				t.Errorf("redactText(%q) = %q; want the user information hidden", text, got)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("redactText(%q) = %q; want it to name %q", text, got, tc.want)
			}
		}
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
