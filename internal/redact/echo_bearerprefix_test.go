package redact

import (
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
// in brackets, as a query's value, at the end of a sentence) and within a
// longer one, whose first or last bytes they are: kept there, the token
// stood whole in the text (see TestEchoesNamedTokenRepeatedInAnyForm).
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
		{"Bearer " + tok + " expired; use " + tok + "XYZW", "Bearer REDACTED expired; use REDACTEDXYZW"},
		{"Bearer " + tok + " expired; use XYZW" + tok, "Bearer REDACTED expired; use XYZWREDACTED"},
		{"Bearer " + tok + " expired; use " + tok + ".v2", "Bearer REDACTED expired; use REDACTED.v2"},
		{"Bearer " + tok + " expired; use " + tok + "~2", "Bearer REDACTED expired; use REDACTED~2"},
		{"Bearer " + tok + " expired; use x/" + tok, "Bearer REDACTED expired; use x/REDACTED"},
	} {
		if got := Echoes(tc.in, nil); got != tc.want {
			t.Errorf("Echoes(%q, nil) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEchoesNamedTokenWithinLongerLinear: a text that names a long token
// after "Bearer " and then repeats it within one word of megabytes, at
// every byte ("aAaA…", in any case), is redacted whole, as one run, by
// one search that follows the occurrences that overlap one another by
// their distance (see cover.add): linear in the text. A search from the
// byte after each occurrence would verify the token's 8 KiB at each of
// millions of indexes, quadratic, and run past the suite's timeout. No
// time is measured here.
func TestEchoesNamedTokenWithinLongerLinear(t *testing.T) {
	tok := strings.Repeat("aA", 4<<10)
	s := "Bearer " + tok + " refused: x" + strings.Repeat("aA", 8<<20)
	got := Echoes(s, nil)
	if want := "Bearer REDACTED refused: xREDACTED"; got != want {
		t.Errorf("Echoes(%.40q…) = %.40q… of %d bytes, want %.40q… of %d", s, got, len(got), want, len(want))
	}
}
