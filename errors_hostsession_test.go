package resilient

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestHostSessionIDRedactedInErrors: a servlet container writes the
// session id of a client without cookies into a URL without a path after
// its host ("https://api.example.com;jsessionid=…"), which url.Parse takes
// as the host and http.Client follows as a redirect's Location. redact.Opaque
// and WithKeyHonoringHosts's panic hide such a parameter, but the
// Transport's error showed it: its URL, net/http's "lookup
// api.example.com;jsessionid=…: no such host" (no URL around it for the
// text redactor to see), an http.Client's quoted URL and a base's own
// words, in the error, Attempt.Err and the log record. The host is shown,
// the session id is not.
func TestHostSessionIDRedactedInErrors(t *testing.T) {
	const sess = "SECRET-session-1"
	raw := "https://api.example.com;jsessionid=" + sess + "/v1"
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", raw, err)
	}
	for _, b := range hostlessBases(raw) {
		// net/http's error names the host it looked up; a base whose
		// resolver fails so answers at once, without the network.
		if b.name == "http.Transport" {
			b.base = &rtScript{steps: []rtStep{{err: &url.Error{Op: "dial", URL: "", Err: errorString("dial tcp: lookup " + u.Host + ": no such host")}}}}
		}
		req := newRequest(t, t.Context(), http.MethodGet, "https://placeholder.test/", nil)
		req.URL, req.Host = u, ""
		outs := secretOutputs(t, b.base, req)
		for _, what := range slices.Sorted(maps.Keys(outs)) {
			if what != "log" && what != "Error" && what != "Attempt.Err" && what != "Error.URL" {
				continue // Attempt.Path: the path alone
			}
			if strings.Contains(outs[what], sess) {
				t.Errorf("%s, %s = %s; want the session id hidden", raw, b.name, outs[what])
			}
		}
		if got, want := outs["Error.URL"], "https://api.example.com;jsessionid=REDACTED/v1"; got != want {
			t.Errorf("%s, %s: Error.URL = %q, want %q", raw, b.name, got, want)
		}
	}
}

// errorString is an error of a fixed text.
type errorString string

func (e errorString) Error() string { return string(e) }
