package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOpaquePasswordBeforeQueryRedacted: a URL without its "//" whose
// password holds a '?' or a '#' written unescaped, the user name read as
// the scheme ("alice:pa?SECRET@api.example.com/v1", which url.Parse reads
// as the scheme "alice", the Opaque "pa" and the query
// "SECRET@api.example.com/v1"), or one slash short or long
// ("https:/alice:pa?…", whose path is "/alice:pa"), showed the start of
// the password ("GET alice:pa", "https:///alice:pa") in the Transport's
// error, Attempt.Path and the log, where the text of an error that
// quotes it hides it (TestOpaquePasswordWithDelimiterRedacted).
func TestOpaquePasswordBeforeQueryRedacted(t *testing.T) {
	for _, raw := range []string{
		"alice:pa?SECRET-pw@api.example.com/v1",
		"alice:pa#SECRET-pw@api.example.com/v1",
		"alice:pa?x=1#SECRET-pw@api.example.com/v1",
		"https:/alice:pa?SECRET-pw@api.example.com/v1",
		"https:///alice:pa#SECRET-pw@api.example.com/v1",
	} {
		t.Run(raw, func(t *testing.T) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			req := (&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}).WithContext(t.Context())
			for name, out := range secretOutputs(t, &rtScript{steps: []rtStep{{err: errors.New("boom")}}}, req) {
				if strings.Contains(out, "SECRET-pw") || strings.Contains(out, "alice:") || strings.Contains(out, ":pa") {
					t.Errorf("%s = %q; want the user information hidden", name, out)
				}
			}
		})
	}
}
