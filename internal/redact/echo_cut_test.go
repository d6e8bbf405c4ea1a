package redact

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEchoesCut: EchoesCut is Echoes for a text no longer than n; a longer
// one is cut to n bytes, a credential that the cut crosses REDACTED
// (looked for in the first 2(n+maxEchoed) bytes), and none beyond them
// looked for.
func TestEchoesCut(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjt"
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1", RawQuery: "api_key=" + key}}
	if got, want := EchoesCut("invalid key "+key, req, 64), "invalid key "+Placeholder; got != want {
		t.Errorf("EchoesCut of a short text = %q, want %q", got, want)
	}
	s := strings.Repeat("x", 50) + key + strings.Repeat("y", 1<<20)
	got := EchoesCut(s, req, 64)
	if len(got) > 64 || strings.Contains(got, key[:8]) || !strings.HasPrefix(got, strings.Repeat("x", 50)+Placeholder) {
		t.Errorf("EchoesCut of %d bytes = %q, want 64 bytes at most, the key across the cut REDACTED", len(s), got)
	}
}
