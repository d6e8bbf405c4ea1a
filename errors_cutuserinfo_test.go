package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRedactionCutWithinUserinfo: a text of more than 4*maxErrorText
// bytes is cut there before it is redacted (see echoesCut), with a
// request or without one (a hedged copy's lost panic value); where the
// cut falls within the user information of a URL the text quotes (a
// proxy's, an API key for a user name: "https://sk_live_…@proxy"), it
// dropped the '@' that ends it, and redactURLs, which then takes it for a
// host, kept the key's first bytes, to the cut: "https://sk_live_4eC39…".
// Whole, the text had it removed. The authority the cut falls within goes;
// one the cut leaves whole keeps its host.
func TestRedactionCutWithinUserinfo(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	req := &http.Request{Method: http.MethodGet, Header: http.Header{},
		URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1/items"}}
	for _, r := range []*http.Request{nil, req} {
		for _, tc := range []struct{ before, userinfo, after string }{
			{` via https://`, key + `:@proxy.test:8080/`, ` failed`},
			{` via "https://`, key + `@proxy.test:8080/x"`, ` failed`},
			{` via socks5:/`, key + `:pw@proxy.test:1080`, ` failed`},
			{` via https://`, `bob@corp.test:` + key + `@proxy.test:8080/`, ` failed`},
		} {
			head := `panic: fetch "https://h.test/?q=`
			for in := 2; in < len(tc.userinfo); in++ { // the cut falls after in bytes of the user information
				pad := 4*maxErrorText - len(head) - len(`"`) - len(tc.before) - in
				s := head + strings.Repeat("x", pad) + `"` + tc.before + tc.userinfo + tc.after
				got := redactRequestError(errors.New(s), r).Error()
				leaked := false
				for _, k := range []int{len("sk_live_") + 1, len("bob@corp.test:") + 1} {
					if k <= len(tc.userinfo) && strings.Contains(got, tc.userinfo[:k]) {
						leaked = true
					}
				}
				if leaked || strings.Contains(got, key[len(key)-12:len(key)-9]) {
					t.Fatalf("redactRequestError(%d bytes, cut %d bytes into %q, request %v) = %q, want no part of the user information", len(s), in, tc.userinfo, r != nil, got)
				}
			}
		}
		// A cut past the authority keeps the host.
		s := `panic: fetch "https://h.test/?q=` + strings.Repeat("x", 4*maxErrorText-len(`panic: fetch "https://h.test/?q=`)-len(`" via https://proxy.test:8080/`)-4) + `" via https://proxy.test:8080/` + strings.Repeat("p", 64)
		if got := redactRequestError(errors.New(s), r).Error(); !strings.Contains(got, "https://proxy.test:8080/ppp") {
			t.Errorf("redactRequestError(cut in a path, request %v) = %q, want the host kept", r != nil, got)
		}
	}
}
