package redact

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedirectedCutLongCredential: RedirectedCut looked for the
// credentials of the requests that led to req in the first 2n bytes of a
// text longer than n, then kept n bytes of what the replacements left: a
// credential longer than those 2n bytes was cut there, no longer matched,
// and kept its first bytes, as did one across the 2n bytes that the
// replacements before it brought within n (a caller's key of some 600
// bytes that a server repeats in the path it redirects to). Each of them
// is REDACTED whole now, as EchoesCut has it (one implementation).
func TestRedirectedCutLongCredential(t *testing.T) {
	long := func(n int) string { return strings.Repeat("IQoJb3JpZ2luX2VjE", n/17+1)[:n] }
	for _, tc := range []struct {
		name string
		tok  string
		text func(tok string) string
		n    int
	}{
		{"longer than the window", long(3000), func(tok string) string { return "/k/" + tok }, 1024},
		{"across the window, brought within n", long(600), func(tok string) string { return tok + "/" + tok }, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := &http.Request{Method: http.MethodGet, Header: http.Header{},
				URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + tc.tok}}
			s := tc.text(tc.tok) + "/" + strings.Repeat("x", 1<<20)
			req := &http.Request{Method: http.MethodGet, Header: http.Header{},
				URL:      &url.URL{Scheme: "https", Host: "api.test", Path: s},
				Response: &http.Response{StatusCode: http.StatusFound, Request: first}}
			got := RedirectedCut(s, req, tc.n)
			if len(got) > tc.n || strings.Contains(got, tc.tok[:MinSecret]) {
				t.Errorf("RedirectedCut of %d bytes, n %d, = %.80q… (%d bytes), want the key REDACTED", len(s), tc.n, got, len(got))
			}
			if want := Redirected(s, req)[:8]; !strings.HasPrefix(got, want) {
				t.Errorf("RedirectedCut = %.40q…, want it to begin as Redirected's %q", got, want)
			}
		})
	}
}
