package redact

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoesCutLongCredential: EchoesCut looked for the credentials of a
// text longer than n in its first 2n bytes, then kept n bytes of what the
// replacements left: a credential longer than what remained of those 2n
// bytes was cut there, no longer matched, and kept its first bytes, as
// did one across the 2n bytes that the replacements before it brought
// within n (an AWS session token, some 600 bytes and more, that a server
// repeats twice in a request id of megabytes). Each of them is REDACTED
// whole now, as Echoes has it in the whole text.
func TestEchoesCutLongCredential(t *testing.T) {
	long := func(n int) string { return strings.Repeat("IQoJb3JpZ2luX2VjE", n/17+1)[:n] }
	for _, tc := range []struct {
		name string
		tok  string
		text func(tok string) string
		n    int
	}{
		{"longer than the window", long(3000), func(tok string) string { return "id " + tok }, 1024},
		{"across the window, brought within n", long(600), func(tok string) string { return tok + " " + tok }, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{URL: &url.URL{Scheme: "https", Host: "s3.test", Path: "/b/k"},
				Header: http.Header{"X-Amz-Security-Token": {tc.tok}}}
			s := tc.text(tc.tok) + " " + strings.Repeat("x", 1<<20)
			got := EchoesCut(s, req, tc.n)
			if len(got) > tc.n || strings.Contains(got, tc.tok[:MinSecret]) {
				t.Errorf("EchoesCut of %d bytes, n %d, = %.80q… (%d bytes), want the token REDACTED", len(s), tc.n, got, len(got))
			}
			if want := Echoes(s, req)[:16]; !strings.HasPrefix(got, want) {
				t.Errorf("EchoesCut = %.40q…, want it to begin as Echoes's %q", got, want)
			}
		})
	}
}
