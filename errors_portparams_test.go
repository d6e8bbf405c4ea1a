package resilient

import (
	"net/url"
	"strings"
	"testing"
)

// TestPortThenSessionKeepsHost: a host with a port followed by a
// parameter ("api.example.com:443;jsessionid=…", as a servlet container
// writes the session id into a URL without a path), which url.Parse
// refuses, was read as user information whose password held a '/' (see
// redact.Opaque), and the error quoting it showed "REDACTED" for
// the host: the caller could not tell which host was wrong. The host
// and its port are shown, the session id is not; without a port, the
// session id was shown by the text redactor (redactURLs) where it was
// not quoted.
func TestPortThenSessionKeepsHost(t *testing.T) {
	const sess = "SECRET-session-1"
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com:443;jsessionid=" + sess + "/v1", "https://api.example.com:443;jsessionid=REDACTED/v1"},
		{"https://api.example.com:443;jsessionid=" + sess, "https://api.example.com:443;jsessionid=REDACTED"},
		{"https://api.example.com;jsessionid=" + sess + "/v1", "https://api.example.com;jsessionid=REDACTED/v1"},
		{"http://api.example.com:8080;v=2/v1", "http://api.example.com:8080;v=2/v1"},
	} {
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, text := range []string{"Get " + tc.in + " failed", `Get "` + tc.in + `" failed`} {
			want := strings.Replace(text, tc.in, tc.want, 1)
			if got := redactText(text); got != want {
				t.Errorf("redactText(%q) = %q, want %q", text, got, want)
			}
		}
	}
	// url.Parse's own error, which quotes it.
	//lint:ignore SA1007 the URL is invalid on purpose: the error it makes is what is redacted.
	_, err := url.Parse("https://api.example.com:443;jsessionid=" + sess + "/v1")
	if err == nil {
		t.Fatal("url.Parse succeeded")
	}
	if got := redactText(err.Error()); strings.Contains(got, sess) || !strings.Contains(got, "api.example.com:443") {
		t.Errorf("redactText(%q) = %q; want the host and port without the session id", err, got)
	}
	// A password with a '/' after a port of digits and a ';' stays hidden.
	if got := redactText(`parse "http://alice:pa;ss/word@proxy.test:3128": invalid port`); strings.Contains(got, "alice") || strings.Contains(got, "word") {
		t.Errorf("redactText = %q; want the user information hidden", got)
	}
}
