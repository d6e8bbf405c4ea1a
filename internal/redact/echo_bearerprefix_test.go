package redact

import (
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoesTokenNamedPartOfCallersCredential: a server's text that names
// a part of the caller's credential as a token ("Bearer " and the key's
// first bytes, or its last) and quotes the whole key elsewhere (in a
// sentence, as a query's value, in a header it echoes) keeps no part of
// the key. The token the text named was replaced everywhere first, within
// the whole key too: REDACTED stood for the key's first bytes there, its
// rest was kept, and the caller's key was no longer found.
func TestEchoesTokenNamedPartOfCallersCredential(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	reqs := map[string]*http.Request{
		"authorization": {Header: http.Header{"Authorization": {"Bearer " + key}},
			URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}},
		"x-api-key": {Header: http.Header{"X-Api-Key": {key}},
			URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}},
		"query": {Header: http.Header{},
			URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + key}},
	}
	for _, tc := range []struct{ in, want string }{
		{"Bearer " + key[:8] + " is not valid; your key " + key + " was refused",
			"Bearer REDACTED is not valid; your key REDACTED was refused"},
		{"your key " + key + " was refused; Bearer " + key[:12],
			"your key REDACTED was refused; Bearer REDACTED"},
		{"bearer " + key[:len(key)-1] + " and then " + key,
			"bearer REDACTED and then REDACTED"},
		{"Bearer " + key[:10] + " unknown: GET /v1?api_key=" + key + "&limit=1",
			"Bearer REDACTED unknown: GET /v1?api_key=REDACTED&limit=1"},
		{"Bearer " + key[:10] + " refused; X-Api-Key: " + key + ".",
			"Bearer REDACTED refused; X-Api-Key: REDACTED."},
		{"Bearer " + key[8:] + " refused; key=" + key,
			"Bearer REDACTED refused; key=REDACTED"},
		{"BEARER " + strings.ToUpper(key[:12]) + " REFUSED: " + strings.ToUpper(key),
			"BEARER REDACTED REFUSED: REDACTED"},
	} {
		for name, req := range reqs {
			if got := Echoes(tc.in, req); got != tc.want {
				t.Errorf("%s: Echoes(%q) = %q, want %q", name, tc.in, got, tc.want)
			}
		}
	}
}

// TestEchoesNamedTokenWhole: the other occurrences of a token a server's
// text names are REDACTED where they stand as a whole token (apart, quoted,
// in brackets, as a query's value, at the end of a sentence) and kept
// within a longer one, whose first or last bytes they are.
func TestEchoesNamedTokenWhole(t *testing.T) {
	const tok = "tok_1234abcd"
	for _, tc := range []struct{ in, want string }{
		{"Bearer " + tok + " expired: " + tok, "Bearer REDACTED expired: REDACTED"},
		{tok + " expired; Bearer " + tok, "REDACTED expired; Bearer REDACTED"},
		{"Bearer " + tok + " expired (" + tok + ")", "Bearer REDACTED expired (REDACTED)"},
		{"Bearer " + tok + ` expired: "` + strings.ToUpper(tok) + `"`, `Bearer REDACTED expired: "REDACTED"`},
		{"Bearer " + tok + " expired; renew " + tok + ". Then retry", "Bearer REDACTED expired; renew REDACTED. Then retry"},
		{"Bearer " + tok + " expired; renew " + tok + "!", "Bearer REDACTED expired; renew REDACTED!"},
		{"Bearer " + tok + " expired: /v1?access_token=" + tok + "&x=1", "Bearer REDACTED expired: /v1?access_token=REDACTED&x=1"},
		{"Bearer " + tok + "\texpired\n" + tok, "Bearer REDACTED\texpired\nREDACTED"},
		// Set apart by bytes no credential holds: a colon, brackets, braces.
		{"Bearer " + tok + " expired: token:" + tok + ":secret", "Bearer REDACTED expired: token:REDACTED:secret"},
		{"Bearer " + tok + " expired [" + tok + "]{" + tok + "}", "Bearer REDACTED expired [REDACTED]{REDACTED}"},
		{"Bearer " + tok + " expired; see #" + tok + "|@" + tok + ";x", "Bearer REDACTED expired; see #REDACTED|@REDACTED;x"},
		// Within a longer token: its first bytes, its last, its middle.
		{"Bearer " + tok + " expired; use " + tok + "XYZW", "Bearer REDACTED expired; use " + tok + "XYZW"},
		{"Bearer " + tok + " expired; use XYZW" + tok, "Bearer REDACTED expired; use XYZW" + tok},
		{"Bearer " + tok + " expired; use " + tok + ".v2", "Bearer REDACTED expired; use " + tok + ".v2"},
		{"Bearer " + tok + " expired; use " + tok + "~2", "Bearer REDACTED expired; use " + tok + "~2"},
		{"Bearer " + tok + " expired; use x/" + tok, "Bearer REDACTED expired; use x/" + tok},
	} {
		if got := Echoes(tc.in, nil); got != tc.want {
			t.Errorf("Echoes(%q, nil) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// replaceTokenEveryIndex is replaceToken as a search of every index of s,
// overlapping occurrences included: the reference that replaceToken, which
// goes on past each occurrence, must agree with, byte for byte.
func replaceTokenEveryIndex(s, v string) string {
	if len(v) < MinSecret || v == Placeholder {
		return s
	}
	edges := newTokenEdges(v)
	var b strings.Builder
	done := 0
	for i := 0; i+len(v) <= len(s); i++ {
		j := i + len(v)
		if i < done || !equalFoldASCII(s[i:j], v) {
			continue
		}
		before := i == 0 || edges.before(s[i-1])
		after := j == len(s) || edges.after(s, j)
		if before && after {
			b.WriteString(s[done:i])
			b.WriteString(Placeholder)
			done = j
		}
	}
	b.WriteString(s[done:])
	return b.String()
}

// TestReplaceTokenEveryIndex: replaceToken writes what a search of every
// index writes, on random texts of near and overlapping occurrences, cases
// mixed, bytes that end tokens and that do not around them.
func TestReplaceTokenEveryIndex(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	tokens := []string{"abab1abab", "aaaa1aaa", "tok=1234", "a=a=a=a=", "AbCd-1234", "é1234567", "a:b:a:b:", "ab]ab]ab"}
	pieces := []string{"a", "A", "b", "1", "=", "&", ".", ":", " ", ",", "x", "ab", "abab1", "aaaa", "é", "\"", "&x", ". ", "]", "[", ":b", "-", "/"}
	for n := 0; n < 30000; n++ {
		v := tokens[rng.Intn(len(tokens))]
		var b strings.Builder
		for k := rng.Intn(30); k >= 0; k-- {
			if rng.Intn(4) == 0 {
				b.WriteString(v)
			} else {
				b.WriteString(pieces[rng.Intn(len(pieces))])
			}
		}
		s := b.String()
		if got, want := replaceToken(s, v), replaceTokenEveryIndex(s, v); got != want {
			t.Fatalf("replaceToken(%q, %q) = %q, want %q", s, v, got, want)
		}
	}
}

// TestEchoesNamedTokenWithinLongerLinear: a text that names a long token
// after "Bearer " and then repeats it within one word of megabytes, at
// every other byte ("aAaA…"), none of those a whole token, is redacted by
// one search that goes on past each occurrence: linear in the text. A
// search from the byte after each occurrence would verify the token's
// 8 KiB at each of millions of indexes, quadratic, and run past the
// suite's timeout. No time is measured here.
func TestEchoesNamedTokenWithinLongerLinear(t *testing.T) {
	tok := strings.Repeat("aA", 4<<10)
	s := "Bearer " + tok + " refused: x" + strings.Repeat("aA", 8<<20)
	got := Echoes(s, nil)
	if want := "Bearer REDACTED refused: x"; !strings.HasPrefix(got, want) || len(got) != len(s)-len(tok)+len(Placeholder) {
		t.Errorf("Echoes(%.40q…) = %.40q… of %d bytes, want %q and the word kept whole", s, got, len(got), want)
	}
}
