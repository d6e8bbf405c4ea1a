package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedactionLongQuotedURLQuery: a server's status line of more than
// 4 KiB, which net/http quotes whole in its error, that begins with a
// reference whose query holds a space ("/login?next=a b&sid=…"), had the
// query removed with the rest of the quoted string (see redactQuoted)
// until the text was cut at 4 KiB before it was redacted: the cut dropped
// the closing quote, and the query after the space stayed in the error.
// The string the cut falls within is now redacted up to the cut.
func TestRedactionLongQuotedURLQuery(t *testing.T) {
	line := "/login?next=a b&sid=s3ss10n " + strings.Repeat("x", 8<<10)
	cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "` + line + `"`)
	req := &http.Request{Method: http.MethodGet, Header: http.Header{},
		URL: &url.URL{Scheme: "https", Host: "api.example.com", Path: "/v1/items"}}
	err := redactRequestError(cause, req)
	if msg := err.Error(); strings.Contains(msg, "s3ss10n") || len(msg) > 2*maxErrorText {
		t.Errorf("redactRequestError = %.160q (%d bytes), want the quoted query removed", msg, len(msg))
	}
}
