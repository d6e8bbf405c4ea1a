package resilient

import (
	"fmt"
	"strings"
	"testing"
)

// TestKeyHonoringHostsPanicHidesSecrets: a value given to
// WithKeyHonoringHosts in place of a host (a service's configured base
// URL, a header pasted by mistake) may carry a credential, and the panic
// it makes reaches the process's stderr and crash reports. The panic
// showed a session id in a parameter of a host without a path
// ("api.test;jsessionid=…"), the key of a query written into a path,
// escaped as a URL's String writes it ("/v1%3Fapi_key=…"), a Bearer token,
// and the password of a URL one slash short ("https:/user:pw@host"). It
// shows none of them now, and still names the host.
func TestKeyHonoringHostsPanicHidesSecrets(t *testing.T) {
	for _, tc := range []struct {
		h, secret string
		named     bool // the host is named; false where what follows a colon is taken as a password's (see redact.Opaque)
	}{
		{"api.example.com;jsessionid=SECRET-session-1", "SECRET-session-1", true},
		{"api.example.com:443;jsessionid=SECRET-session-1", "SECRET-session-1", true},
		{"https://api.example.com/v1%3Fapi_key=SECRET-key-2", "SECRET-key-2", true},
		{"api.example.com/v1%3faccess_token=SECRET-key-2", "SECRET-key-2", true},
		{"Bearer sk_live_SECRET3 api.example.com", "sk_live_SECRET3", true},
		{"api.example.com Authorization: Bearer sk_live_SECRET3", "sk_live_SECRET3", false},
		{"https:/alice:SECRET-pw-4@api.example.com", "SECRET-pw-4", true},
		{"https:///alice:SECRET-pw-4@api.example.com/v1", "SECRET-pw-4", true},
	} {
		p := mustPanic(t, fmt.Sprintf("WithKeyHonoringHosts(%q) did not panic", tc.h), func() { WithKeyHonoringHosts(tc.h) })
		msg, _ := p.(string)
		if strings.Contains(msg, tc.secret) || !strings.HasPrefix(msg, "resilient: WithKeyHonoringHosts: invalid host ") || tc.named && !strings.Contains(msg, "api.example.com") {
			t.Errorf("WithKeyHonoringHosts(%q) panicked with %q; want the option and the host named, without %q", tc.h, msg, tc.secret)
		}
	}
}
