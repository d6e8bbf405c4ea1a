package redact

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

// replaceSecretFromScratch is replaceSecret as it would be with a search
// of its own for each occurrence, from each index after the one before:
// the reference that the one search for all of them must agree with, byte
// for byte. Each occurrence takes the characters it begins or ends within
// with it; one that begins before the end of the one before, within it
// (an overlap) or within the character it took, joins its Placeholder.
func replaceSecretFromScratch(s, v string) string {
	if len(v) < MinSecret || v == Placeholder {
		return s
	}
	var b strings.Builder
	done, end := 0, -1 // s[:done] is written; the run being replaced ends at end
	for from := 0; ; {
		i := indexFold(s[from:], v)
		if i < 0 {
			break
		}
		i += from
		from = i + 1
		j := i + len(v)
		for k := 1; k < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); k++ {
			i--
		}
		for k := 1; k < utf8.UTFMax && j < len(s) && !utf8.RuneStart(s[j]); k++ {
			j++
		}
		if i >= end {
			if end >= 0 {
				b.WriteString(Placeholder)
			}
			b.WriteString(s[done:i])
		}
		end = max(end, j)
		done = end
	}
	if end >= 0 {
		b.WriteString(Placeholder)
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
