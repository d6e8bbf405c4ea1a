package redact

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCutLongCredential: EchoesCut and RedirectedCut looked for the
// credentials of a text longer than n in its first 2n bytes, then kept n
// bytes of what the replacements left: a credential longer than what
// remained of those 2n bytes was cut there, no longer matched, and kept
// its first bytes, as did one across the 2n bytes that the replacements
// before it brought within n (an AWS session token, some 600 bytes and
// more, that a server repeats twice in a request id of megabytes; a
// caller's key that a server repeats in the path it redirects to). Each
// of them is REDACTED whole now, as the search has it in the whole text
// (one implementation: cutSearched).
func TestCutLongCredential(t *testing.T) {
	long := func(n int) string { return strings.Repeat("IQoJb3JpZ2luX2VjE", n/17+1)[:n] }
	// echoes is a server's text echoing tok, a header's credential.
	echoes := func(tok, text string) (string, *http.Request) {
		return text, &http.Request{URL: &url.URL{Scheme: "https", Host: "s3.test", Path: "/b/k"},
			Header: http.Header{"X-Amz-Security-Token": {tok}}}
	}
	// redirected is the path of a request a server redirected to, which
	// repeats tok, the key of the caller's first request.
	redirected := func(tok, path string) (string, *http.Request) {
		first := &http.Request{Method: http.MethodGet, Header: http.Header{},
			URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + tok}}
		return path, &http.Request{Method: http.MethodGet, Header: http.Header{},
			URL:      &url.URL{Scheme: "https", Host: "api.test", Path: path},
			Response: &http.Response{StatusCode: http.StatusFound, Request: first}}
	}
	for _, tc := range []struct {
		name   string
		cut    func(string, *http.Request, int) string
		search func(string, *http.Request) string
		make   func(tok, text string) (string, *http.Request)
		text   string // the text's beginning, %s the credential
		tok    string
		n      int
	}{
		{"EchoesCut, longer than the window", EchoesCut, Echoes, echoes, "id %s ", long(3000), 1024},
		{"EchoesCut, across the window", EchoesCut, Echoes, echoes, "%s %s ", long(600), 512},
		{"RedirectedCut, longer than the window", RedirectedCut, Redirected, redirected, "/k/%s/", long(3000), 1024},
		{"RedirectedCut, across the window", RedirectedCut, Redirected, redirected, "%s/%s/", long(600), 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, req := tc.make(tc.tok, strings.ReplaceAll(tc.text, "%s", tc.tok)+strings.Repeat("x", 1<<20))
			got := tc.cut(s, req, tc.n)
			if len(got) > tc.n || strings.Contains(got, tc.tok[:MinSecret]) {
				t.Errorf("cut of %d bytes, n %d, = %.80q… (%d bytes), want the credential REDACTED", len(s), tc.n, got, len(got))
			}
			if want := tc.search(s, req)[:8]; !strings.HasPrefix(got, want) {
				t.Errorf("cut = %.40q…, want it to begin as the whole text's search %q", got, want)
			}
		})
	}
}
