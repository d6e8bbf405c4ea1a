package resilient

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedactRefSessionIDKeepsPort: url.Parse reads the port of
// "https://api.example.com;jsessionid=…:8443/v1" after the session id, and
// net/http dials it; BreakerChange.Key and Attempt.Host keep it
// (redact.HostParams). The text of an error that quotes such a URL (a
// *url.Error of a base that is an http.Client, a message redactText
// cleans) lost it with the session id: it named the host's default port,
// another address than the one called.
func TestRedactRefSessionIDKeepsPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example.com;jsessionid=SECRET-session-1:8443/v1", "https://api.example.com;jsessionid=REDACTED:8443/v1"},
		{"https://api.example.com;jsessionid=SECRET-session-1:8443", "https://api.example.com;jsessionid=REDACTED:8443"},
		{"https://api.example.com;jsessionid=SECRET-session-1;v=2:8443/v1", "https://api.example.com;jsessionid=REDACTED;v=2:8443/v1"},
		{"https://u:SECRET-session-1@api.example.com;jsessionid=SECRET-session-1:8443/v1?q=1", "https://api.example.com;jsessionid=REDACTED:8443/v1"},
		{"https://api.example.com;jsessionid=SECRET-session-1/v1", "https://api.example.com;jsessionid=REDACTED/v1"},
	} {
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
		text := "Get \"" + tc.in + "\": EOF" // as a *url.Error quotes it
		if got := redactText(text); strings.Contains(got, "SECRET-session-1") || !strings.Contains(got, tc.want) {
			t.Errorf("redactText(%q) = %q, want it to name %q", text, got, tc.want)
		}
	}
	raw := "https://api.example.com;jsessionid=SECRET-session-1:8443/v1"
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse: %v", err)
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	err = redactRequestError(&url.Error{Op: "Get", URL: raw, Err: io.EOF}, req)
	want := `Get "https://api.example.com;jsessionid=REDACTED:8443/v1": EOF`
	if got := err.Error(); got != want {
		t.Errorf("redactRequestError(%q) = %q, want %q", raw, got, want)
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("redactRequestError(%q) does not unwrap to io.EOF", raw)
	}
}
