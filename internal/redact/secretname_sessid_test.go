package redact

import (
	"net/http"
	"net/url"
	"testing"
)

// TestSecretNameSessionIDShortWord: a session id under PHP's name
// (PHPSESSID, as a query parameter when cookies are off: session.use_trans_sid),
// and under the short word "sessid" that others name theirs by, carries a
// credential, as JSESSIONID and ASP's ASPSESSIONID… do; its value, which a
// server echoes, is REDACTED. Common words that hold "sess" or "sid" are
// not made credentials by it.
func TestSecretNameSessionIDShortWord(t *testing.T) {
	for name, want := range map[string]bool{
		"PHPSESSID": true, "phpsessid": true, "sessid": true, "X-Sessid": true, "user_sessid": true,
		"ASPSESSIONIDQQGGQGPA": true, "JSESSIONID": true,
		"side": false, "inside": false, "consider": false, "residue": false, "obsessive": false,
		"assessment": false, "assessment_id": false, "possessive": false, "session_count": true,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, got, want)
		}
	}
	const sid = "9q1mdnc0e3ra1pk2v0hc4lb7g5"
	req := &http.Request{URL: &url.URL{Scheme: "https", Host: "shop.test", Path: "/cart", RawQuery: "PHPSESSID=" + sid}}
	if got, want := Echoes("session "+sid+" expired", req), "session REDACTED expired"; got != want {
		t.Errorf("Echoes(session … expired) = %q, want %q", got, want)
	}
	if got, want := Path("/cart;PHPSESSID="+sid), "/cart;PHPSESSID=REDACTED"; got != want {
		t.Errorf("Path(/cart;PHPSESSID=…) = %q, want %q", got, want)
	}
}
