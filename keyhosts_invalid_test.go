package resilient

import (
	"fmt"
	"testing"
)

// TestKeyHonoringHostsMalformedPanics: WithKeyHonoringHosts took, without
// a word, hosts that no request names: an IPv6 address with a bracket
// missing ("[2001:db8::1", "2001:db8::1]:8443"), brackets around what is
// no address ("[api.test]", "[]:443", "[::1]x"), a name with more than one
// colon, which it bracketed as an address it is not ("api.test::8443",
// "api.test:8443:", "a:b:c"), and a name ending in a space that is not
// ASCII's (a no-break space pasted with it). The caller's host was then
// silently not named, and its keyed writes not resent. Each panics now,
// and the spellings the option documents are still taken, and still name
// their host.
func TestKeyHonoringHostsMalformedPanics(t *testing.T) {
	for _, h := range []string{
		"[2001:db8::1", "2001:db8::1]", "2001:db8::1]:8443", "[[::1]]", "[::1]]",
		"[api.test]", "[api.test]:443", "[]", "[]:443", "[::1]x", "api.test]",
		"api.test::8443", "api.test:8443:", "a:b:c", "api.test:443:443",
		"api.test\u00a0", "api.test\u2003",
	} {
		panicsNaming(t, fmt.Sprintf("WithKeyHonoringHosts(%q)", h), "resilient: WithKeyHonoringHosts: invalid host ",
			func() { WithKeyHonoringHosts(h) })
	}
	for _, tc := range []struct{ named, scheme, host string }{
		{"::1", "http", "[::1]:8080"},
		{"[::1]:8443", "https", "[0:0::1]:8443"},
		{"fe80::1%eth0", "http", "[FE80::1%eth0]"},
		{"[fe80::1%eth0]:80", "http", "[fe80::1%eth0]"},
		{"::ffff:192.0.2.1", "https", "192.0.2.1"},
		{"[192.0.2.1]", "https", "192.0.2.1:8443"},
		{"2001:db8::1:8443", "https", "[2001:db8::1:8443]"}, // an address, as documented
		{"api.test:", "https", "api.test:8443"},
		{"bücher.example", "https", "XN--BCHER-KVA.example."},
	} {
		var c config
		WithKeyHonoringHosts(tc.named)(&c)
		if !newKeyHosts(c.keyHosts).isNamed(tc.scheme, tc.host) {
			t.Errorf("WithKeyHonoringHosts(%q) does not name %s://%s", tc.named, tc.scheme, tc.host)
		}
	}
}
