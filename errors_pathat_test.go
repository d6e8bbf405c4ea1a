package resilient

import (
	"net/url"
	"strings"
	"testing"
)

// TestAtInPathKeepsText: a URL whose host url.Parse refuses for its port
// (a service's name, "api.example.com:https", or a parameter after it)
// was read as user information whose password held a '/', up to an '@'
// anywhere in the path: an '@' that starts a segment ("/users/@alice",
// "/users/@me", as Discord's and Mastodon's routes are) dropped the host
// and the path before it from the error. Such an '@' is no password's
// end, and a port named http or https is no password's start unless an
// '@' within a segment follows it ("alice:https/pw@proxy": see
// TestServiceNamePasswordHidden), as a port of letters is; a password
// with a '/' ("alice:pa/ss@proxy") stays hidden.
func TestAtInPathKeepsText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com:https/users/@alice/x", "https://api.example.com:https/users/@alice/x"},
		{"https://api.example.com:https/users/a@b/x", "https://b/x"}, // "api.example.com:https/users/a" may be a password
		{"https://api.example.com:443;v=1/users/@alice/x", "https://api.example.com:443;v=1/users/@alice/x"},
		{"https://api.example.com:abc/users/@alice/x", "https://REDACTED/users/@alice/x"},
		{"https://alice:pa/ss@proxy.test:3128", "https://proxy.test:3128"},
		{"https://alice:pa/s/s@proxy.test:3128/v1", "https://proxy.test:3128/v1"},
	} {
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
		text := "Get " + tc.in + " failed"
		if got, want := redactText(text), "Get "+tc.want+" failed"; got != want {
			t.Errorf("redactText(%q) = %q, want %q", text, got, want)
		}
	}
	//lint:ignore SA1007 the URL is invalid on purpose: the error it makes is what is redacted.
	_, err := url.Parse("https://api.example.com:https/users/@alice/x")
	if err == nil {
		t.Fatal("url.Parse succeeded")
	}
	if got := redactText(err.Error()); !strings.Contains(got, "api.example.com:https/users/@alice/x") {
		t.Errorf("redactText(%q) = %q; want the URL whole", err, got)
	}
}
