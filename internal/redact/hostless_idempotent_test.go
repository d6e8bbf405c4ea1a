package redact

import "testing"

// TestHostlessPathIdempotent: HostlessPath dropped the user information of
// the authority a URL one slash short holds ("https:/bob@host/v1"), and
// read the password's rule (see strayUserinfo) only before it: what was
// left ("api.example.com:https/users/a@b/x") lost more the second time,
// so that a path it had redacted changed when redacted again. The rule is
// read after the user information goes too.
func TestHostlessPathIdempotent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/bob@api.example.com:https/users/a@b/x", "/b/x"},
		{"/bob@api.example.com:abc/v1", "/REDACTED/v1"},
		{"/bob@alice:pa/SECRET@api.example.com/v1", "/api.example.com/v1"},
		{"/alice:pa", "/REDACTED"}, // "https:/alice:pa?SECRET@host": the rest is a query
		// What follows a password reads as one too: "/proxy.example:abc/v1",
		// which a second pass dropped, is dropped the first time.
		{"/alice:pa/SECRET@proxy.example:abc/v1", "/REDACTED/v1"},
		{"/:A/0@0:A", "/REDACTED"},
		{"/alice:pa/SECRET@bob:pw/x@api.example.com:8443/v1", "/api.example.com:8443/v1"},
		// A host, with a port of digits, of a service's name, or none.
		{"/bob@api.example.com:8443/users/a@b/x", "/api.example.com:8443/users/a@b/x"},
		{"/bob@api.example.com:https/v1", "/api.example.com:https/v1"},
		{"///api.example.com/users/a@b/x", "///api.example.com/users/a@b/x"},
	} {
		got := HostlessPath(tc.in)
		if got != tc.want {
			t.Errorf("HostlessPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := HostlessPath(got); again != got {
			t.Errorf("HostlessPath(%q) = %q, and of that %q", tc.in, got, again)
		}
	}
}
