package redact

import (
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// TestEchoesNamedTokenRepeatedInAnyForm: a token a server's text names
// after "Bearer " and repeats elsewhere, whole, is REDACTED there too,
// whatever bytes stand around it: a URL's path ("/tokens/<tok>/…", a
// bot's "/bot<tok>/…"), a query's value percent-encoded within another
// URL, curly quotes, an ellipsis, a JSON text's escapes, a base64 token's
// padding after a parameter's '='. Replaced only where bytes no credential
// holds set it apart, it was kept in each: a reader of the log had the
// token whole.
func TestEchoesNamedTokenRepeatedInAnyForm(t *testing.T) {
	const tok, padded, bot = "tok_1234abcd", "dGhpc2lzYXRva2VuMTI=", "123456:ABCdefGHIjkl"
	for _, tc := range []struct{ in, tok string }{
		{"Bearer " + tok + " expired: DELETE /v1/tokens/" + tok + "/sessions", tok},
		{"Bearer " + tok + " expired; redirect_uri=https%3A%2F%2Fapp.test%2Fcb%3Ftoken%3D" + tok + "%26x%3D1", tok},
		{"Bearer " + tok + " expired: “" + tok + "”", tok},
		{"Bearer " + tok + " expired; renew " + tok + "...", tok},
		{`Bearer ` + tok + ` expired: {"detail":"token ` + tok + `.\nSign in"}`, tok},
		{"Bearer " + padded + " expired: /v1?access_token=" + padded + "&x=1", padded},
		{"Bearer " + bot + " refused: POST /bot" + bot + "/sendMessage", bot},
	} {
		if got := Echoes(tc.in, nil); strings.Contains(strings.ToLower(got), strings.ToLower(tc.tok)) {
			t.Errorf("Echoes(%q, nil) = %q keeps %q", tc.in, got, tc.tok)
		}
	}
}

// TestEchoesCallersCredentialWithinNamedToken: a credential of the
// caller's that is a part of a longer token a server's text names after
// "Bearer " and repeats elsewhere does not break the longer one up there.
func TestEchoesCallersCredentialWithinNamedToken(t *testing.T) {
	const short, long = "abcdefgh1234", "abcdefgh1234XYZWVUTS"
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"},
		Header: http.Header{"Cookie": {"sid=" + short}}}
	in := "Bearer " + long + " expired; renew " + long + " now"
	if got, want := Echoes(in, req), "Bearer REDACTED expired; renew REDACTED now"; got != want {
		t.Errorf("Echoes(%q) = %q, want %q", in, got, want)
	}
}

// TestEchoesNamedTokensBoundedWork: the tokens a server's text names,
// holding bytes a credential's search may trip on (':', '[', '=', '&',
// '.'), repeated overlapping through 16 MiB of text, are replaced with a
// few copies of the text at most: linear work. Counted in bytes, not in
// time.
func TestEchoesNamedTokensBoundedWork(t *testing.T) {
	head := "Bearer a:a:a:a:a1 Bearer [[[[[[[[x1 Bearer ==a==a==a= Bearer &&.&&.&&.1 "
	for _, body := range []string{"a:a:a:a:a:", "[[[[[[[[[[", "==a==a==a==a", "&&.&&.&&.&&.", "a:a:a:a:a1a:a:a:a:a1"} {
		s := head + strings.Repeat(body, (16<<20)/len(body))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got := Echoes(s, nil)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(8*len(s)) {
			t.Errorf("Echoes of %d bytes of %q allocates %d bytes, want %d at most", len(s), body, n, 8*len(s))
		}
		if strings.Contains(got, "a:a:a:a:a1") || strings.Contains(got, "==a==a==a=") {
			t.Errorf("Echoes of %d bytes of %q keeps a named token: %.80q…", len(s), body, got)
		}
	}
}
