package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// TestEchoesNamedTokenOverlapsCallersCredential: a token a server names
// ("Bearer tok_…") whose end the caller's credential begins with, both
// repeated together elsewhere in the text, is REDACTED there with the
// credential, whichever is the longer. Replaced one after the other, the
// longest first, the one replaced second was no longer whole in the text:
// the first bytes of the token stayed, or the last of the caller's key.
func TestEchoesNamedTokenOverlapsCallersCredential(t *testing.T) {
	u := &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}
	for _, tc := range []struct{ named, key, joined string }{
		{"tok_AAAA_BBBB", "BBBB_CCCC_DDDD_EE", "tok_AAAA_BBBB_CCCC_DDDD_EE"},                // the caller's the longer
		{"tok_AAAA_BBBB_CCCC", "BBBB_CCCC_DDDD", "tok_AAAA_BBBB_CCCC_DDDD"},                 // the token the longer
		{"tok_AAAA_BBBB_CCCC", "bbbb_cccc_dddd_eeee_ff", "TOK_aaaa_BBBB_CCCC_DDDD_EEEE_FF"}, // in other cases
	} {
		req := &http.Request{URL: u, Header: http.Header{"X-Api-Key": {tc.key}}}
		in := "Bearer " + tc.named + " rejected; we saw " + tc.joined + " then"
		want := "Bearer REDACTED rejected; we saw REDACTED then"
		if got := Echoes(in, req); got != want {
			t.Errorf("Echoes(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEchoesCallersCredentialsOverlap: two credentials of the caller's
// that a server's text repeats overlapping, the end of one the start of
// the other (two cookies, a header and a query parameter, a Basic user
// name and its password), are REDACTED together: replaced one after the
// other, the second was no longer whole in the text and its rest stayed.
func TestEchoesCallersCredentialsOverlap(t *testing.T) {
	const a, b = "abcdefgh1234", "1234XYZWVUTS" // "abcdefgh1234XYZWVUTS" holds both
	u := func(q string) *url.URL { return &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: q} }
	for name, req := range map[string]*http.Request{
		"cookies":          {URL: u(""), Header: http.Header{"Cookie": {"a=" + a + "; b=" + b}}},
		"header and query": {URL: u("api_secret=" + b), Header: http.Header{"X-Api-Key": {a}}},
		"basic": {URL: u(""), Header: http.Header{"Authorization": {"Basic " +
			base64.StdEncoding.EncodeToString([]byte(b+":"+a))}}},
	} {
		for _, s := range []string{"saw " + a + b[4:] + " refused", "SAW " + strings.ToUpper(a+b[4:]) + " REFUSED"} {
			want := s[:4] + "REDACTED" + s[len(s)-8:]
			if got := Echoes(s, req); got != want {
				t.Errorf("%s: Echoes(%q) = %q, want %q", name, s, got, want)
			}
		}
	}
}

// TestEchoesOverlapNoAlloc: a text that names no token ("Bearer x") and
// echoes none of the request's credentials costs no allocation.
func TestEchoesOverlapNoAlloc(t *testing.T) {
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=abcdefgh1234"},
		Header: http.Header{"Cookie": {"a=abcdefgh1234; b=1234XYZWVUTS"}, "Authorization": {"Bearer tok_AAAA_BBBB"}}}
	for _, s := range []string{"Bearer x is not a token here", "Missing Bearer credentials for 7f3c2a9e"} {
		if n := testing.AllocsPerRun(100, func() { Echoes(s, req) }); n != 0 {
			t.Errorf("Echoes(%q) allocates %v times, want 0", s, n)
		}
	}
}

// TestEchoesOverlapBoundedWork: a hostile text of 1 MiB that repeats,
// overlapping, the tokens it names and the caller's credentials costs a
// few copies of the text, not one per occurrence or per credential found.
// The work is counted in allocations and bytes, not in time.
func TestEchoesOverlapBoundedWork(t *testing.T) {
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=BBBB_CCCC_DDDD"},
		Header: http.Header{"Cookie": {"a=CCCC_DDDD_EE; b=AAAA_BBBB"}}}
	s := "Bearer tok_AAAA_BBBB Bearer tok_AAAA_BBBB_CCCC " + strings.Repeat("tok_AAAA_BBBB_CCCC_DDDD_EE", (1<<20)/26)
	var out string
	if n := testing.AllocsPerRun(1, func() { out = Echoes(s, req) }); n > 8 {
		t.Errorf("Echoes of %d bytes allocates %v times, want 8 at most", len(s), n)
	}
	if strings.Contains(out, "AAAA") || strings.Contains(out, "EE") {
		t.Errorf("Echoes left a credential: %.80q", out)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Echoes(s, req)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(4*len(s)) {
		t.Errorf("Echoes of %d bytes allocates %d bytes, want %d at most", len(s), got, 4*len(s))
	}
}
