package resilient

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRedactionLinearInURLsQuoted: a server that answers with a status
// line of "x://)" repeated, without a space, gets it quoted whole in
// net/http's error (`malformed HTTP response "x://)x://)…"`), up to its
// 10 MB header limit; the Transport redacts the URLs of every error
// before it records it. redactURLs scanned the rest of the text for each
// of those "URLs" (where it ends, whether a query runs past its ')'):
// quadratic, a 60 KB line cost 2 s of CPU within the call, which no
// attempt timeout cuts, 1 MB some minutes, 10 MB hours. Its work is now
// linear. No time is measured here: the 2 MiB line below is redacted in
// well under a second by a linear scan, where a quadratic one runs for
// most of an hour, and the suite's timeout fails it.
func TestRedactionLinearInURLsQuoted(t *testing.T) {
	line := strings.Repeat("x://)", (2<<20)/len("x://)"))
	cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "` + line + `"`)
	var atts []Attempt
	tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
		WithObserver(func(a Attempt) { atts = append(atts, a) }))
	_, err := tr.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1", nil))
	if err == nil {
		t.Fatal("RoundTrip succeeded, want the base's error")
	}
	if len(err.Error()) > 2*maxErrorText {
		t.Fatalf("RoundTrip's error holds %d bytes, want at most %d", len(err.Error()), 2*maxErrorText)
	}
	if len(atts) != 1 || len(atts[0].Err.Error()) > 2*maxErrorText {
		t.Fatalf("observed %d attempts, want 1 with a bounded error", len(atts))
	}
}
