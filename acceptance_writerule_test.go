package resilient_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestKeyHonoringHostsIPv6: WithKeyHonoringHosts takes "a host or
// host:port" (issue 12), and its doc "a name or an address": an IPv6
// address is named as it is written alone ("::1") or in a URL ("[::1]",
// "[::1]:8080"), and a write to it that failed ambiguously (a 503) is
// resent with its key. Named bare, it was never matched (the request's
// host is bracketed), and the write was returned after one attempt.
func TestKeyHonoringHostsIPv6(t *testing.T) {
	for _, tc := range []struct {
		named    string
		url      string
		attempts int
	}{
		{"::1", "http://[::1]:8080/v1/posts", 2},
		{"::1", "http://[::1]/v1/posts", 2},
		{"[::1]", "http://[::1]:8080/v1/posts", 2},
		{"[::1]:8080", "http://[::1]:8080/v1/posts", 2},
		{"[::1]:8080", "http://[::1]:9090/v1/posts", 1},
		{"2001:DB8::1", "https://[2001:db8::1]/v1/posts", 2},
		{"2001:db8::1", "https://[2001:db8::2]/v1/posts", 1},
	} {
		base := &answers{steps: []answer{{status: 503}, {status: 201}}}
		var atts []resilient.Attempt
		tr := resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithKeyHonoringHosts(tc.named),
			resilient.WithObserver(func(a resilient.Attempt) { atts = append(atts, a) }))
		status, _, err := call(t, tr, context.Background(), http.MethodPost, tc.url, strings.NewReader("{}"))
		at, _, _ := base.sent()
		if len(at) != tc.attempts || err != nil {
			t.Errorf("named %q, POST %s: %d, %v after %d attempts; want %d", tc.named, tc.url, status, err, len(at), tc.attempts)
			continue
		}
		if tc.attempts == 1 && atts[0].StopReason != resilient.StopUnsafeWrite {
			t.Errorf("named %q, POST %s: stop reason %q, want %q", tc.named, tc.url, atts[0].StopReason, resilient.StopUnsafeWrite)
		}
	}
}
