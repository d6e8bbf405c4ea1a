package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMailtoKeepsItsScheme: an opaque URL of a scheme registered for one
// ("mailto:support@vendor.example", which a server's message or a
// caller's mistake may name) was read as a key given as a user name
// ("KEY:@api.example.com", see redact.SchemeIsUser): errors showed it as
// "vendor.example", its scheme and its address lost, which are no
// secrets. A mailto URL is an address, and has no user information (RFC
// 6068); another registered scheme keeps its name, its user information
// still dropped. A key read as a scheme is still hidden.
func TestMailtoKeepsItsScheme(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mailto:support@vendor.example", "mailto:support@vendor.example"},
		{"mailto:support@vendor.example?subject=key%20sk_live_SECRET", "mailto:support@vendor.example"},
		{"MAILTO:support@vendor.example", "MAILTO:support@vendor.example"},
		{"sip:alice:SECRET-pw-1@pbx.example", "sip:pbx.example"},
		{"xmpp:alice@chat.example", "xmpp:chat.example"},
		{"key-3ax6xnjp29jd6SECRET:@api.example.com/v1", "api.example.com/v1"},
	} {
		if got := redactRef(tc.in); got != tc.want {
			t.Errorf("redactRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
		quoted := `contact "` + tc.in + `" for help`
		if got, want := redactText(quoted), `contact "`+tc.want+`" for help`; got != want {
			t.Errorf("redactText(%q) = %q, want %q", quoted, got, want)
		}
	}

	// The Transport's error names the URL of a request for one.
	u, err := url.Parse("mailto:support@vendor.example")
	if err != nil {
		t.Fatal(err)
	}
	base := &rtScript{steps: []rtStep{{err: errors.New("unsupported protocol scheme")}}}
	req := newRequest(t, t.Context(), http.MethodGet, "https://placeholder.test/", nil)
	req.URL, req.Host = u, ""
	outs := secretOutputs(t, base, req)
	if got, want := outs["Error.URL"], "mailto:support@vendor.example"; got != want {
		t.Errorf("Error.URL = %q, want %q", got, want)
	}
	if got := outs["Error"]; !strings.Contains(got, "GET mailto:support@vendor.example:") {
		t.Errorf("Error() = %q, want the URL named with its scheme", got)
	}
}
