package redact

import "testing"

// A Telegram bot token whose colon is escaped (%3A) is a credential even
// when a parameter later in its segment holds a colon: the first colon,
// escaped or not, ends the bot's id.
func TestPathBotEscapedColonBeforeColon(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/bot123456%3AAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw;v=a:b/sendMessage", "/REDACTED/sendMessage"},
		{"/bot123456%3aAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw;v=a:b/sendMessage", "/REDACTED/sendMessage"},
		// Path(Path(p)) is Path(p): the token parameter's value goes
		// the first time, and the segment with it.
		{"/bot1%3A;token=a:b", "/REDACTED"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
