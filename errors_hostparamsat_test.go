package resilient

import (
	"strings"
	"testing"
)

// TestHostSessionIDThenAtKeepsHost: since a port of digits followed by
// parameters is read as a password's start when an '@' follows
// ("alice:1234;x/y@proxy"), a host with its servlet session id
// ("api.example.com:8443;jsessionid=…") whose path or query held an '@'
// later (an e-mail address in the query) was shown as the host after that
// '@' ("https://b.example"): the host the call went to lost, another
// named in its place, and nothing secret hidden by it. A parameter whose
// name says it carries a credential (a session id, whose value
// redact.Opaque hides) is a host's, not a password's.
func TestHostSessionIDThenAtKeepsHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com:8443;jsessionid=SECRET-session-1/v1?to=a@b.example", "https://api.example.com:8443;jsessionid=REDACTED/v1"},
		{"https://api.example.com:443;jsessionid=SECRET-session-1/users/x@alice", "https://api.example.com:443;jsessionid=REDACTED/users/x@alice"},
		{"https://api.example.com:443;JSESSIONID=SECRET-session-1#at@b.example", "https://api.example.com:443;JSESSIONID=REDACTED"},
	} {
		text := "Get " + tc.in + ": EOF"
		got := redactText(text)
		if strings.Contains(got, "SECRET-session-1") || !strings.Contains(got, tc.want) {
			t.Errorf("redactText(%q) = %q, want it to name %q", text, got, tc.want)
		}
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// The passwords of 5905264 stay hidden (see TestPortParamsPasswordHidden).
	for _, in := range []string{"http://alice:1234;x/y@proxy.test:3128", "http://alice:1234;x?y@proxy.test:3128"} {
		if got := redactRef(in); got != "http://proxy.test:3128" {
			t.Errorf("redactRef(%q) = %q, want %q", in, got, "http://proxy.test:3128")
		}
	}
}
