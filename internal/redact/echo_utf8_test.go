package redact

import (
	"net/http"
	"testing"
	"unicode/utf8"
)

// A credential need not be UTF-8 (a header's obs-text, a query's %A9, a
// Basic one's decoded bytes): where the text repeats it from within a
// character, or up to within one, the character goes with it, and valid
// text stays valid.
func TestEchoesKeepsUTF8(t *testing.T) {
	for _, tc := range []struct{ in, secret, want string }{
		{"éabcdefgh", "\xa9abcdefgh", Placeholder},                 // from within é
		{"abcdefghé!", "abcdefgh\xc3", Placeholder + "!"},          // up to within é
		{"x€abcdefgh y", "\xacabcdefgh", "x" + Placeholder + " y"}, // from within €
	} {
		req := &http.Request{Header: http.Header{"X-Api-Key": {tc.secret}}}
		got := Echoes(tc.in, req)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("Echoes(%q) with the credential %q = %q, want %q", tc.in, tc.secret, got, tc.want)
		}
	}
}
