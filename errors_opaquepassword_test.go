package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestOpaquePasswordWithDelimiterRedacted: a URL without its "//" whose
// password holds a '/' written unescaped, the user name read as the
// scheme ("alice:pa/ss@api.example.com/v1", a caller who forgot
// "https://"), after a scheme ("https:alice:…"), or one slash short or
// long ("https:/alice:…", read as a path), was shown whole in the
// Transport's error, Attempt.Path and the log: the user information was
// looked for only up to the first '/'. It goes, as it does from a URL
// with its "//" (TestProxyPasswordWithDelimiterRedacted), and so it does
// from the text of an error that quotes such a URL.
func TestOpaquePasswordWithDelimiterRedacted(t *testing.T) {
	for _, tc := range []struct{ url, ref, want string }{ // ref: redactRef's; want: the Transport's error's
		{"alice:pa/SECRET-pw@api.example.com/v1", "api.example.com/v1", "api.example.com/v1"},
		{"alice:https/SECRET-pw@api.example.com/v1", "api.example.com/v1", "api.example.com/v1"},
		{"https:alice:pa/SECRET-pw@api.example.com/v1", "https:api.example.com/v1", "https:api.example.com/v1"},
		{"https:alice:https/SECRET-pw@api.example.com/v1", "https:api.example.com/v1", "https:api.example.com/v1"},
		{"https:/alice:pa/SECRET-pw@api.example.com/v1", "https:/api.example.com/v1", "https:///api.example.com/v1"},
		{"https:///alice:https/SECRET-pw@api.example.com/v1", "https:///api.example.com/v1", "https:///api.example.com/v1"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			var logs bytes.Buffer
			var atts []Attempt
			tr := New(&rtScript{steps: []rtStep{{err: errors.New("boom")}}}, WithMaxRetries(0),
				WithObserver(func(a Attempt) { atts = append(atts, a) }),
				WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			_, err := tr.RoundTrip(newRequest(t, t.Context(), http.MethodGet, tc.url, nil))
			if err == nil || len(atts) != 1 {
				t.Fatalf("err %v, %d attempts observed; want an error and one", err, len(atts))
			}
			for name, out := range map[string]string{
				"Error":        err.Error(),
				"Attempt.Path": atts[0].Path,
				"Attempt.Err":  atts[0].Err.Error(),
				"log":          logs.String(),
				"redactText":   redactText(`Get "` + tc.url + `": EOF`),
			} {
				if strings.Contains(out, "SECRET-pw") || strings.Contains(out, "alice:") {
					t.Errorf("%s = %q; want the user information hidden", name, out)
				}
			}
			if got := redactRef(tc.url); got != tc.ref {
				t.Errorf("redactRef(%q) = %q, want %q", tc.url, got, tc.ref)
			}
			if !strings.Contains(err.Error(), " "+tc.want+":") {
				t.Errorf("Error = %q; want it to name %q", err, tc.want)
			}
		})
	}
}
