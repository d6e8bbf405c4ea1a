package resilientotel

import (
	"net/http"
	"net/url"
	"testing"
)

// TestHostSessionIDRedacted: a servlet container writes the session id of
// a client without cookies after the host of a URL without a path
// ("https://api.example.com;jsessionid=…"), which url.Parse reads as the
// host and http.Client follows as a redirect's Location. url.full and
// server.address showed the session id, which url.full hides in a path's
// segment (attrs_pathparam_test.go); they show the host without it now.
func TestHostSessionIDRedacted(t *testing.T) {
	u, err := url.Parse("https://api.example.com;jsessionid=SECRET-session-1/v1?x=1")
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{URL: u}
	if got, want := redactedURL(req), "https://api.example.com;jsessionid=REDACTED/v1"; got != want {
		t.Errorf("redactedURL(%s) = %q, want %q", u, got, want)
	}
	if got, port := serverAddr(req); got != "api.example.com;jsessionid=REDACTED" || port != 443 {
		t.Errorf("serverAddr(%s) = %q, %d, want %q, 443", u, got, port, "api.example.com;jsessionid=REDACTED")
	}
}
