package redact

import (
	"strings"
	"testing"
	"unsafe"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/api/v10/webhooks/1234567890/AbC-def_123xyz", "/api/v10/webhooks/1234567890/REDACTED"},
		{"/api/webhooks/1234567890/AbC-def_123xyz/messages/987", "/api/webhooks/1234567890/REDACTED/messages/987"},
		{"/api/v10/interactions/555/aW50ZXJhY3Rpb24/callback", "/api/v10/interactions/555/REDACTED/callback"},
		{"/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", "/REDACTED/sendMessage"},
		{"/file/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/photos/file_1.jpg", "/file/REDACTED/photos/file_1.jpg"},
		// Its colon escaped, as a RawPath or a quoted URL writes it.
		{"/bot123456789%3AAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", "/REDACTED/sendMessage"},
		{"/bot123456789%3aAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", "/REDACTED/sendMessage"},
		{"/bot123456789%3A/x", "/bot123456789%3A/x"},
		{"/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "/services/T00000000/B00000000/REDACTED"},
		// Slack's response URLs (of an interaction, of a slash command)
		// and workflow webhooks.
		{"/actions/T02RN7AQLBX/3091787227457/OhjSb9WyLTABYRf5U3uRaE13", "/actions/T02RN7AQLBX/3091787227457/REDACTED"},
		{"/commands/T02RN7AQLBX/3091787227457/OhjSb9WyLTABYRf5U3uRaE13", "/commands/T02RN7AQLBX/3091787227457/REDACTED"},
		{"/triggers/T02RN7AQLBX/3091787227457/OhjSb9WyLTABYRf5U3uRaE13", "/triggers/T02RN7AQLBX/3091787227457/REDACTED"},
		{"/workflows/T02RN7AQLBX/A0123ABCD/3091787227457/OhjSb9WyLTABYRf5U3uRaE13", "/workflows/T02RN7AQLBX/A0123ABCD/3091787227457/REDACTED"},
		// Paths without a secret are returned as they are.
		{"/api/v10/webhooks/1234567890", "/api/v10/webhooks/1234567890"},
		{"/api/v10/webhooks/abc/def", "/api/v10/webhooks/abc/def"},
		{"/v1/bots/botany/123", "/v1/bots/botany/123"},
		{"/bot:x/y", "/bot:x/y"},
		{"/services/status", "/services/status"},
		{"/repos/o/r/actions/runs/123/logs", "/repos/o/r/actions/runs/123/logs"},
		{"/repos/o/r/actions/workflows/123/runs", "/repos/o/r/actions/workflows/123/runs"},
		{"/v1/commands/Tasks/12/x", "/v1/commands/Tasks/12/x"},
		{"/v1/posts", "/v1/posts"},
		{"", ""},
		// The path of a URL missing its scheme: the authority's user info
		// goes; an '@' past the first segment stays.
		{"token@api.example.com/v1/posts", "api.example.com/v1/posts"},
		{"user:token@api.example.com/api/webhooks/1/t", "api.example.com/api/webhooks/1/REDACTED"},
		{"api.example.com/users/@me", "api.example.com/users/@me"},
		{"/users/a@b", "/users/a@b"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPathCommonAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Path("/api/v1/posts/123/comments") }); n != 0 {
		t.Errorf("Path of a path without a secret allocates %v times", n)
	}
}

// FuzzPath checks that Path is idempotent and grows a path by no more
// than a Placeholder per byte; that it changes a path that starts with '/'
// only by writing Placeholder in it; and that a credential of each kind
// its doc lists (form picks it) does not survive, whatever path comes
// before it (p up to its query, which the credential would be in) and
// after it (p).
func FuzzPath(f *testing.F) {
	f.Add("/api/webhooks/1/t", "AbC-def_123xyz", uint8(0))
	f.Add("/bot1:a/x", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", uint8(2))
	for form := range uint8(pathForms) {
		f.Add("/v1/items;v=2", "s3cret-Value_1.x", form)
		f.Add("api.example.com", "0123456789", form)
	}
	f.Fuzz(func(t *testing.T, p, token string, form uint8) {
		r := Path(p)
		if Path(r) != r {
			t.Errorf("Path(Path(%q)) = %q, want %q", p, Path(r), r)
		}
		if len(r) > len(p)+len(Placeholder)*len(p) {
			t.Errorf("Path(%q) grew to %q", p, r)
		}
		if strings.HasPrefix(p, "/") && r != p && !strings.Contains(r, Placeholder) {
			t.Errorf("Path(%q) = %q: changed, but nothing REDACTED", p, r)
		}

		if token == "" || strings.ContainsAny(token, "/?#;&%") || strings.Contains(Placeholder, token) {
			return // not a credential of a path's segment or a parameter's value
		}
		prefix := p
		if i := strings.IndexByte(prefix, '?'); i >= 0 {
			prefix = prefix[:i]
		}
		for _, esc := range [...]string{"%3F", "%3f"} {
			if i := strings.Index(prefix, esc); i >= 0 {
				prefix = prefix[:i]
			}
		}
		prefix = "/" + strings.TrimPrefix(prefix, "/")
		in := pathForm(prefix, token, p, form)
		if strings.Contains(pathForm(prefix, "", p, form), token) || strings.Contains(pathForm(prefix, Placeholder, p, form), token) {
			return // the path holds it elsewhere too, or its redaction does
		}
		if got := Path(in); strings.Contains(got, token) {
			t.Errorf("Path(%q) = %q keeps the credential %q", in, got, token)
		}
	})
}

// pathForms is the number of the forms of pathForm.
const pathForms = 7

// pathForm returns a path that carries token as a credential, in one of
// the forms that Path's doc lists, after prefix, which holds no query, and
// with tail after it.
func pathForm(prefix, token, tail string, form uint8) string {
	switch form % pathForms {
	case 0:
		return prefix + "/api/webhooks/123/" + token + "/" + tail
	case 1:
		return prefix + "/interactions/456/" + token + "/callback/" + tail
	case 2:
		return prefix + "/bot123456:" + token + "/sendMessage/" + tail
	case 3:
		return prefix + "/services/T0001/B0002/" + token + "/" + tail
	case 4:
		return prefix + "/cart;jsessionid=" + token + "/" + tail
	case 5:
		return prefix + "/items?api_key=" + token + "&" + tail
	default:
		return prefix + "/items%3Fapi_key=" + token + "&" + tail
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"}, // not within é
		{"aéb", 3, "aé"},
		{"/a%C3%A9", 7, "/a%C3"}, // not within %A9
		{"/a%C3%A9", 6, "/a%C3"},
		{"/a%C3%A9", 5, "/a%C3"},
		{"/a%C3%A9", 4, "/a"},
		{"%41", 1, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// A value cut by Truncate does not keep the long string it came from.
func TestTruncateCopies(t *testing.T) {
	long := strings.Repeat("a", 1<<20)
	got := Truncate(long, MaxHost)
	if len(got) != MaxHost {
		t.Fatalf("len(Truncate(1 MiB, %d)) = %d", MaxHost, len(got))
	}
	if unsafe.StringData(got) == unsafe.StringData(long) {
		t.Errorf("Truncate(1 MiB, %d) shares the memory of its input", MaxHost)
	}
}
