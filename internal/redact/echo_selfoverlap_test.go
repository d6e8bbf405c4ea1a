package redact

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// TestEchoesCredentialOverlapsItself: a credential of the caller's whose
// first bytes are its last ("k3yA…6k", in any case), that a server's text
// repeats twice sharing them, or after a token whose end it shares
// ("…c2lnbmF0dXJl" then "mF0dXJlM…"), is REDACTED in each occurrence. The
// occurrences were looked for each after the end of the one before: the
// second, which begins within the first, was not found, and all but its
// first bytes stayed.
func TestEchoesCredentialOverlapsItself(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		in   string
	}{
		{"header", http.Header{"X-Api-Key": {"k3yA1b2C3d4E5f6k"}}, "denied: k3yA1b2C3d4E5f6k3yA1b2C3d4E5f6k."},
		{"other case", http.Header{"X-Api-Key": {"k3yA1b2C3d4E5f6k"}}, "denied: K3YA1B2C3D4E5F6k3yA1b2C3d4E5f6k."},
		{"basic user and password", http.Header{"Authorization": {basic("hvEhDPwHQYoYec2h", "EhvEhDPwHQYoYec2")}},
			"denied: EhvEhDPwHQYoYec2hvEhDPwHQYoYec2h."},
		{"after a token", http.Header{"Authorization": {"Bearer AKIABUUvVb:" + jwt}, "Cookie": {"s1=mF0dXJlM"}},
			"denied: AKIABUUvVb:" + jwt + "MF0DXJLM.AKIABUUvVb:" + jwt + "."},
	} {
		req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}, Header: tc.h}
		want := "denied: REDACTED."
		if strings.Count(tc.in, "AKIA") == 2 {
			want = "denied: REDACTED.REDACTED."
		}
		if got := Echoes(tc.in, req); got != want {
			t.Errorf("%s: Echoes(%q) = %q, want %q", tc.name, tc.in, got, want)
		}
	}
}

// TestEchoesCredentialOverlapsItselfBoundedWork checks that covering the
// occurrences of a credential that overlap one another costs no more than
// those that do not: a server's text of 64 KiB of one byte, which a key of
// that byte repeated (a query value a server wrote into the URL it
// redirected to) occurs at each index of, is REDACTED whole, in a few
// copies of the text: the occurrences one distance apart are followed by
// that distance, checking only the bytes each adds (see cover.add).
// The work is counted in allocations and bytes, not in time.
func TestEchoesCredentialOverlapsItselfBoundedWork(t *testing.T) {
	s := strings.Repeat("a", 64<<10)
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + strings.Repeat("a", 4<<10)}}
	if got := Echoes(s, req); strings.ReplaceAll(got, Placeholder, "") != "" {
		t.Errorf("Echoes(64 KiB of a) = %.40q…%q, want REDACTED only", got, got[len(got)-60:])
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Echoes(s, req)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(8*len(s)) {
		t.Errorf("Echoes of %d bytes allocates %d bytes, want %d at most", len(s), got, 8*len(s))
	}
}
