package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// secretOutputs sends req once through a Transport over base and returns
// every text the call gave that a log or a crash report keeps: the
// error's message, the observed Attempt (%+v: Path, Err) and the slog
// record.
func secretOutputs(t *testing.T, base http.RoundTripper, req *http.Request) map[string]string {
	t.Helper()
	var logs bytes.Buffer
	var atts []Attempt
	tr := New(base, WithMaxRetries(0), WithObserver(func(a Attempt) { atts = append(atts, a) }),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	resp, err := tr.RoundTrip(req)
	if resp != nil {
		resp.Body.Close()
	}
	if err == nil || len(atts) != 1 {
		t.Fatalf("RoundTrip(%s) = %v, %d attempts observed; want an error and one", req.URL, err, len(atts))
	}
	out := map[string]string{"Error": err.Error(), "Attempt.Path": atts[0].Path, "Attempt.Err": atts[0].Err.Error(), "log": logs.String()}
	var e *Error
	if errors.As(err, &e) {
		out["Error.URL"] = e.URL
	}
	return out
}

// clientBase is a base RoundTripper built on an http.Client, as an SDK's
// own client below the Transport is: its errors are *url.Error quoting the
// request's URL.
type clientBase struct{ c *http.Client }

func (b clientBase) RoundTrip(req *http.Request) (*http.Response, error) { return b.c.Do(req) }

// hostlessBases returns the bases a request for raw, a URL net/http cannot
// send, fails in: net/http's Transport, an http.Client (whose error quotes
// the URL), and a base that writes the URL in its own words, unquoted.
func hostlessBases(raw string) []struct {
	name string
	base http.RoundTripper
} {
	return []struct {
		name string
		base http.RoundTripper
	}{
		{"http.Transport", &http.Transport{}},
		{"http.Client", clientBase{&http.Client{Transport: &http.Transport{}}}},
		{"own words", &rtScript{steps: []rtStep{{err: errors.New("GET " + raw + " giving up after 1 attempt(s)")}}}},
	}
}

// TestHostlessURLUserinfoRedacted: a URL one slash short
// ("https:/alice:pw@api.example.com", a typo) or one slash long
// ("https:///…") has no host for url.Parse, which reads the authority
// the caller meant, user information included, as the path. The
// Transport's error (its URL, and net/http's or an http.Client's words
// quoting the URL), Attempt.Path and the log record showed the password:
// the authority after the slashes loses its user information, as it does
// after "//".
func TestHostlessURLUserinfoRedacted(t *testing.T) {
	for _, raw := range []string{
		"https:/alice:SECRET-pw-1@api.example.com/v1",
		"https:///alice:SECRET-pw-1@api.example.com/v1",
		"http:/SECRET-pw-1@api.example.com/v1?x=1",
	} {
		for _, b := range hostlessBases(raw) {
			u, err := url.Parse(raw)
			if err != nil || u.Host != "" {
				t.Fatalf("url.Parse(%q) = %#v, %v; want a URL without a host", raw, u, err)
			}
			req := newRequest(t, t.Context(), http.MethodGet, "https://placeholder.test/", nil)
			req.URL, req.Host = u, ""
			outs := secretOutputs(t, b.base, req)
			for _, what := range slices.Sorted(maps.Keys(outs)) {
				if strings.Contains(outs[what], "SECRET-pw-1") {
					t.Errorf("%s, %s: %s shows the password: %s", raw, b.name, what, outs[what])
				}
			}
		}
	}
	// What url.Parse reads as a path elsewhere keeps its '@'.
	if got := redactRef("/users/alice:x@example.com"); got != "/users/alice:x@example.com" {
		t.Errorf(`redactRef("/users/alice:x@example.com") = %q, want it as it is`, got)
	}
}
