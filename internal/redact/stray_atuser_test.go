package redact

import "testing"

// TestOpaqueAtInUserNamePasswordHidden: a user name with an '@' in it (an
// e-mail address, as many proxies and APIs take for Basic authentication)
// before a password written unescaped with a '/', a '?' or a '#' in it
// ("//alice@corp.example:pa/SECRET@proxy.test:3128") had only the name
// dropped: the rule that finds such a password (see strayUserinfo) was
// not read once an '@' came before the first '/', and the password was
// shown as the host's port and path.
func TestOpaqueAtInUserNamePasswordHidden(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"//alice@corp.example:pa/SECRET-pw@proxy.test:3128", "//proxy.test:3128"},
		{"//alice@corp.example:pa?SECRET-pw@api.example.com/v1", "//api.example.com/v1"},
		{"//alice@corp.example:https/SECRET-pw@api.example.com/v1", "//api.example.com/v1"},
		{"alice@corp.example:pa/SECRET-pw@api.example.com/v1", "api.example.com/v1"},
		// The user information of the usual kind goes, the host stays.
		{"//alice@api.example.com:8443/users/a@b/x", "//api.example.com:8443/users/a@b/x"},
		{"//alice@[::1]:8443/users/a@b/x", "//[::1]:8443/users/a@b/x"},
	} {
		if got := Opaque(tc.in, ""); got != tc.want {
			t.Errorf("Opaque(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
