package redact

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoesCallersCredentialWithinAnotherPastMaxFound: of more than
// 8 credentials of the caller's that a server's text echoes, a longer one
// looked for after the first 8, within which one of them stands, is
// REDACTED whole. Once the echoer replaced them in batches of 8, those
// first found were replaced before it was looked for, the shorter one
// within it too: the rest of the longer one stayed in the text, no longer
// found. Every credential is now looked for in the text as the server
// wrote it (see echoer.flush).
func TestEchoesCallersCredentialWithinAnotherPastMaxFound(t *testing.T) {
	const long = "key00000000XYZWVUTSRQPONM" // the first query value's, and more
	var q, text []string
	for i := range 8 {
		v := fmt.Sprintf("key%08d", i)
		q = append(q, fmt.Sprintf("api_key%d=%s", i, v))
		text = append(text, v)
	}
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: strings.Join(q, "&")},
		Header: http.Header{"X-Api-Secret": {long}}}
	in := "keys " + strings.Join(text, " ") + " refused; secret " + long + " refused"
	want := "keys " + strings.TrimSuffix(strings.Repeat("REDACTED ", 8), " ") + " refused; secret REDACTED refused"
	if got := Echoes(in, req); got != want {
		t.Errorf("Echoes(%q) = %q, want %q", in, got, want)
	}
}
