package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// echoRequest returns a request that carries secret the way where says:
// in a header whose name says it is a credential, as a Bearer token, as
// the user name or the password of a Basic authorization, in a query
// parameter, in its URL's user information, or in a cookie.
func echoRequest(secret string, where uint8) *http.Request {
	u := &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}
	h := http.Header{}
	switch where % 7 {
	case 0:
		h["X-Api-Key"] = []string{secret}
	case 1:
		h["Authorization"] = []string{"Bearer " + secret}
	case 2:
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":x"))}
	case 3:
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+secret))}
	case 4:
		u.RawQuery = "api_key=" + url.QueryEscape(secret)
	case 5:
		u.User = url.UserPassword("user", secret)
	case 6:
		h["Cookie"] = []string{"a=b; session=" + secret}
	}
	return &http.Request{URL: u, Header: h}
}

// FuzzEchoes checks that Echoes never lets a server's text repeat the
// caller's credential, wherever the request carried it, never makes the
// text longer, and keeps valid UTF-8 valid.
func FuzzEchoes(f *testing.F) {
	for i, s := range [][2]string{
		{"invalid api key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
		{"token ghp_16C7e42F292c6912E7710c838347Ae178B4a expired", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"},
		{"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln is not valid", "abcdefgh"},
		{"Missing Bearer credentials", "credentials"},
		{"a+b/c= 12345678 and a%2Bb", "a+b/c=12"},
		{"p%40ss word: p@ss word!", "p@ss word!"},
	} {
		f.Add(s[0], s[1], uint8(i))
	}
	f.Fuzz(func(t *testing.T, s, secret string, where uint8) {
		if len(secret) < MinSecret || strings.ContainsAny(secret, ":;=\r\n") || strings.TrimSpace(secret) != secret {
			return // not a credential such a request carries whole
		}
		for _, in := range [...]string{s, s + secret + s, secret} {
			got := Echoes(in, echoRequest(secret, where))
			if len(got) > len(in) {
				t.Fatalf("Echoes(%q) = %q grew", in, got)
			}
			if utf8.ValidString(in) && !utf8.ValidString(got) {
				t.Fatalf("Echoes(%q) = %q is not valid UTF-8", in, got)
			}
			// The placeholder is no part of the credential ("D0000000" in
			// "REDACTED0000000" is the placeholder's D and the text's
			// zeros).
			if strings.Contains(strings.ReplaceAll(got, Placeholder, "\n"), secret) {
				t.Fatalf("Echoes(%q) = %q repeats the credential %q (where %d)", in, got, secret, where%7)
			}
		}
	})
}

// FuzzTruncate checks that Truncate gives a prefix of s of at most n
// bytes, never cut within a character of valid UTF-8 nor within a
// %-escape, and s itself when it fits.
func FuzzTruncate(f *testing.F) {
	f.Add("/a%C3%A9", 6)
	f.Add("aéb", 2)
	f.Add("%41", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 {
			n = -n
		}
		if n < 0 {
			return
		}
		got := Truncate(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("Truncate(%q, %d) = %q", s, n, got)
			}
			return
		}
		if len(got) > n || !strings.HasPrefix(s, got) {
			t.Fatalf("Truncate(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q cuts a character", s, n, got)
		}
		if i := strings.LastIndexByte(got, '%'); i >= 0 && len(got)-i < 3 && i+3 <= len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			t.Fatalf("Truncate(%q, %d) = %q cuts an escape", s, n, got)
		}
	})
}

// FuzzUserinfo checks that Userinfo leaves nothing of the user information
// before a host's last '@' and is idempotent, and that Opaque drops a
// query and a fragment.
func FuzzUserinfo(f *testing.F) {
	for _, s := range []string{"alice:s3cret@api.test", "api.test", "a@b@c", "//user:token@host/path?q#f",
		"user:token@host/webhooks/1/t", "@", "REDACTED@x", "//@/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := Userinfo(h)
		if Userinfo(got) != got {
			t.Fatalf("Userinfo(%q) = %q, and of that %q", h, got, Userinfo(got))
		}
		if at := strings.LastIndexByte(h, '@'); at >= 0 && got != Placeholder+h[at:] {
			t.Fatalf("Userinfo(%q) = %q", h, got)
		}
		// Opaque's output is not checked for idempotency: "@//@" is
		// "//@", whose empty user information goes the second time.
		if o := Opaque(h, ""); strings.ContainsAny(o, "?#") {
			t.Fatalf("Opaque(%q) = %q", h, o)
		}
	})
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
