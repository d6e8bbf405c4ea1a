package redact

import "testing"

// TestPathEscapedQuestionMarkThenQuery: a "%3F" in a path reads as the
// start of a query written into it (as a URL's String escapes one), but a
// query's '?' after it still starts one: a parameter of the text after the
// "%3F" that holds an '=' ("report%3Fv=2.pdf", a name holding "?v=")
// must not swallow the credentials of the query that follows. Before, the
// query was looked for from the "%3F" alone, and "x=1?api_key=…" was one
// parameter named x: the key was kept.
func TestPathEscapedQuestionMarkThenQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/v1/report%3Fv=2.pdf?api_key=sk_live_9F2C4A7E", "/v1/report%3Fv=2.pdf?api_key=REDACTED"},
		{"/v1/a%3Fx=1?page=2&access_token=abc", "/v1/a%3Fx=1?page=2&access_token=REDACTED"},
		// Still, a query escaped into the path alone, and one after a
		// "%3F" holding no '='.
		{"/v1/items%3Fpage=2&api_key=sk_live_9F2C4A7E", "/v1/items%3Fpage=2&api_key=REDACTED"},
		{"/v1/a%3Fb?api_key=sk_live_9F2C4A7E", "/v1/a%3Fb?api_key=REDACTED"},
		{"/v1/files/why%3F.txt", "/v1/files/why%3F.txt"},
	} {
		if got := Path(tc.in); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
