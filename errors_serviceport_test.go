package resilient

import (
	"net/url"
	"strings"
	"testing"
)

// TestServiceNamePortNotRedacted: a host written with the name of its
// scheme's service for a port ("api.example.com:https", as in
// /etc/services), which url.Parse refuses, was shown as REDACTED whole in
// the error that quotes it and in the panic of WithKeyHonoringHosts, as
// though the name were a user's and "https" the start of a password: the
// caller could not tell which host was wrong. A port named http or https
// is no password's start worth hiding; a password cut by a '#', a '/' or
// a '?' ("http://alice:pa#…@proxy") stays hidden.
func TestServiceNamePortNotRedacted(t *testing.T) {
	for _, raw := range []string{"https://api.example.com:https/v1", "http://api.example.com:HTTP"} {
		_, err := url.Parse(raw)
		if err == nil {
			t.Fatalf("url.Parse(%q) succeeded", raw)
		}
		if got := redactText(err.Error()); !strings.Contains(got, "api.example.com") {
			t.Errorf("redactText(%q) = %q; want the host shown", err, got)
		}
	}
	p := mustPanic(t, "WithKeyHonoringHosts(\"api.example.com:https\") did not panic", func() { WithKeyHonoringHosts("api.example.com:https") })
	if msg, _ := p.(string); !strings.Contains(msg, `"api.example.com:https"`) {
		t.Errorf("WithKeyHonoringHosts(\"api.example.com:https\") panicked with %q; want the host shown", msg)
	}
	//lint:ignore SA1007 the URL is invalid on purpose: the error it makes is what is redacted.
	_, err := url.Parse("http://alice:pa#SECRET@proxy.test:3128")
	if got := redactText(err.Error()); strings.Contains(got, "alice:pa") {
		t.Errorf("redactText(%q) = %q; want the password's start hidden", err, got)
	}
}
