package redact

import (
	"net/http"
	"testing"
	"unicode/utf8"
)

// TestEchoesCredentialSharingACharacter: a credential that begins and
// ends within a character (a header's obs-text, a Basic one's decoded
// bytes), repeated twice in a row, where the character the first ends
// within is the one the second begins within, is REDACTED both times. The
// search for the second went on after the character the first took with
// it, past the second's first byte: the second, all but its first byte,
// stayed in the text.
func TestEchoesCredentialSharingACharacter(t *testing.T) {
	const secret = "\xa9abcdefg\xc3" // within "é" (\xc3\xa9) at both ends
	req := &http.Request{Header: http.Header{"X-Api-Key": {secret}}}
	for _, tc := range []struct{ in, want string }{
		{"x\xc3\xa9abcdefg\xc3\xa9abcdefg\xc3\xa9 y", "x" + Placeholder + " y"},
		{"x\xc3\xa9ABCDEFG\xc3\xa9abcdefg\xc3\xa9ABCDEFG\xc3\xa9 y", "x" + Placeholder + " y"},
	} {
		got := Echoes(tc.in, req)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("Echoes(%q) with the credential %q = %q, want %q", tc.in, secret, got, tc.want)
		}
		if got := replaceSecret(tc.in, secret); got != tc.want {
			t.Errorf("replaceSecret(%q, %q) = %q, want %q", tc.in, secret, got, tc.want)
		}
	}
}
