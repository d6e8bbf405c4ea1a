package resilient

import (
	"strings"
	"testing"
)

// TestPortParamsPasswordHidden: redact.Opaque reads a port before
// the parameters that follow it, so that "api.example.com:443;jsessionid=…"
// keeps its host; but a password of digits, a ';' and a '/' written
// unescaped ("alice:1234;x/y@proxy:3128", an authority url.Parse cannot
// read) was then taken for a host with a port, and the whole of it shown:
// before, the port "1234;x" was no number and the user information went.
// Where an '@' that ends a password follows, the parameters do not make a
// host of it.
func TestPortParamsPasswordHidden(t *testing.T) {
	for _, tc := range []struct{ in, secret, want string }{
		{"https://api.example.com:443;jsessionid=SECRET-session-1/users/@alice", "SECRET-session-1", "https://api.example.com:443;jsessionid=REDACTED/users/@alice"},
		{"http://alice:1234;x/y@proxy.test:3128", "1234;x/y", "http://proxy.test:3128"},
		{"https://alice:44;3/x@api.example.com/v1", "44;3/x", "https://api.example.com/v1"},
		{"https://alice:443;pw/x@api.example.com/v1", "443;pw/x", "https://api.example.com/v1"},
	} {
		for _, text := range []string{"proxyconnect " + tc.in + " failed", `parse "` + tc.in + `": invalid port`} {
			got := redactText(text)
			if strings.Contains(got, tc.secret) {
				t.Errorf("redactText(%q) = %q; want the password %q hidden", text, got, tc.secret)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("redactText(%q) = %q; want it to name %q", text, got, tc.want)
			}
		}
		if got := redactRef(tc.in); strings.Contains(got, tc.secret) || got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
