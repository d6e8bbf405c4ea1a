package resilient

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestOneSlashURLInTextRedacted: a URL one slash short
// ("https:/alice:pw@host", a typo url.Parse reads as a path) is redacted
// when it is quoted (redactQuoted) and when it is the request's own (its
// host's user information), but an error's text that names another one
// unquoted (a base's own words on the redirect it refused, a proxy's
// address) kept its password, query and fragment: redactURLs looked for
// "://" only. After a scheme net/http speaks, one slash now starts a URL
// too, as in redactRef; text that is no URL keeps its words.
func TestOneSlashURLInTextRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redirect to https:/alice:SECRET-pw-1@api.example.com/x refused", "redirect to https:/api.example.com/x refused"},
		{"Get https:/api.example.com/v1?access_token=SECRET-tok-1: EOF", "Get https:/api.example.com/v1 EOF"},
		{"proxy http:/SECRET-pw-1@proxy.test:3128 failed", "proxy http:/proxy.test:3128 failed"},
		{"see https:/api.example.com/webhooks/1/SECRET-tok-1 now", "see https:/api.example.com/webhooks/1/REDACTED now"},
		// Text that is no URL, or one with nothing to redact, as it is.
		{"ratio 3:/4 and a:/b c", "ratio 3:/4 and a:/b c"},
		{"open C:/Users/alice/file.txt: denied", "open C:/Users/alice/file.txt: denied"},
		{"at pointer:/items/0#/name?x", "at pointer:/items/0#/name?x"},
		{"xhttps:/a@b?c", "xhttps:/a@b?c"},
		{"HTTPS:/SECRET-pw-1@api.example.com", "HTTPS:/api.example.com"},
		{"https:/api.example.com/users/@me", "https:/api.example.com/users/@me"},
	} {
		got := redactText(tc.in)
		if got != tc.want {
			t.Errorf("redactText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := redactText(got); again != got {
			t.Errorf("redactText(%q) = %q, want %q (idempotent)", got, again, got)
		}
	}

	// Through the Transport: a base's words on a URL that is not the
	// request's, unquoted.
	base := &rtScript{steps: []rtStep{{err: errors.New("stopped after redirect to https:/alice:SECRET-pw-1@other.example/v1")}}}
	req := newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1", nil)
	outs := secretOutputs(t, base, req)
	for _, what := range slices.Sorted(maps.Keys(outs)) {
		if strings.Contains(outs[what], "SECRET-pw-1") {
			t.Errorf("%s = %s; want the password hidden", what, outs[what])
		}
	}
}
