package redact

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// replaceSecretFromScratch is replaceSecret as it was when it looked for
// each occurrence with a search of its own: the reference that the one
// search for all of them must agree with, byte for byte. Each search goes
// on from the end of the occurrence before, not of the character it took
// with it; an occurrence that begins within that character joins the
// Placeholder before.
func replaceSecretFromScratch(s, v string) string {
	if len(v) < MinSecret || v == Placeholder {
		return s
	}
	i := indexFold(s, v)
	if i < 0 {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is written, or replaced
	for i >= 0 {
		j := i + len(v)
		from := j
		for k := 1; k < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); k++ {
			i--
		}
		for k := 1; k < utf8.UTFMax && j < len(s) && !utf8.RuneStart(s[j]); k++ {
			j++
		}
		if i >= done {
			b.WriteString(s[done:i])
			b.WriteString(Placeholder)
		}
		done = max(done, j)
		if i = indexFold(s[from:], v); i >= 0 {
			i += from
		}
	}
	b.WriteString(s[done:])
	return b.String()
}

// TestReplaceSecretOneSearch: replaceSecret, whose search of the
// occurrences reuses its scans (see foldSearch), writes what searches from
// scratch wrote, on random texts of near matches, cases mixed, and bytes
// of characters past ASCII cut by a credential's raw bytes.
func TestReplaceSecretOneSearch(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	secrets := []string{"abcdefgh1", "ABCDEFGH1", "aaaaaaaa", "aaaaaaaab", "1abcdefg", "\xa9abcdefg", "abcdefg\xc3", "é1234567"}
	pieces := []string{"a", "A", "b", "abcdefgh", "ABCDEFGH1", "abcdefgh1", "aaaa", "AAAAaaaa", "1", ",", " ", "é", "\xc3", "\xa9", "g", "€"}
	for n := 0; n < 30000; n++ {
		v := secrets[rng.Intn(len(secrets))]
		var b strings.Builder
		for k := rng.Intn(40); k >= 0; k-- {
			if rng.Intn(6) == 0 {
				b.WriteString(v)
			} else {
				b.WriteString(pieces[rng.Intn(len(pieces))])
			}
		}
		s := b.String()
		if got, want := replaceSecret(s, v), replaceSecretFromScratch(s, v); got != want {
			t.Fatalf("replaceSecret(%q, %q) = %q, want %q", s, v, got, want)
		}
	}
}
