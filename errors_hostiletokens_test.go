package resilient

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRedactionLinearInTokensEchoed: a server that answers with a status
// line (no space: net/http quotes it whole in its error, up to its 10 MB
// header limit) naming a token after "Bearer", then repeating it, or
// repeating the caller's own key, has each occurrence REDACTED before the
// error is recorded. replaceSecret looked for each occurrence from scratch,
// scanning the rest of the text for the case of the token's first letter
// that it does not hold: quadratic, 2 MiB cost 7 s of CPU within the call,
// which no attempt timeout cuts, 10 MB some minutes. Its work is now
// linear. No time is measured here: the 24 MiB lines below are redacted
// within seconds by a linear scan, where a quadratic one runs for a
// quarter of an hour each, past the suite's timeout, which fails it.
func TestRedactionLinearInTokensEchoed(t *testing.T) {
	const key = "k3ysecretvalue"
	for _, line := range []string{
		"x,Bearer,abcdefgh1," + strings.Repeat("abcdefgh1,", (24<<20)/len("abcdefgh1,")),
		strings.Repeat(key+",", (24<<20)/len(key+",")),
	} {
		cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "` + line + `"`)
		var atts []Attempt
		tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
			WithObserver(func(a Attempt) { atts = append(atts, a) }))
		req := newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1", nil)
		req.Header.Set("X-Api-Key", key)
		_, err := tr.RoundTrip(req)
		if err == nil {
			t.Fatal("RoundTrip succeeded, want the base's error")
		}
		if len(err.Error()) > 2*maxErrorText {
			t.Fatalf("RoundTrip's error holds %d bytes, want at most %d", len(err.Error()), 2*maxErrorText)
		}
		if msg := err.Error(); strings.Contains(msg, key) || strings.Contains(msg, "abcdefgh1") {
			t.Fatalf("RoundTrip's error = %.200q, want the tokens it repeats REDACTED", msg)
		}
		if len(atts) != 1 || len(atts[0].Err.Error()) > 2*maxErrorText {
			t.Fatalf("observed %d attempts, want 1 with a bounded error", len(atts))
		}
	}
}
