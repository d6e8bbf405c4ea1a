package resilient

import (
	"strings"
	"testing"
)

// TestRedactTextUnpairedQuote: redactQuoted paired the quotes of a text in
// order, so that a quote of the text that opens no string (encoding/json's
// `invalid character '"'`, an escaped one, a message cut) made the quoted
// URL after it read as text between two strings, and a URL without a
// scheme kept its query: `… "/v1?access_token=…" …` was logged whole.
// A reference that begins after any quote loses its query and fragment.
func TestRedactTextUnpairedQuote(t *testing.T) {
	const secret = "s3cretpassword"
	for _, in := range []string{
		`" "/v1?X-Amz-Signature=` + secret + `" "`,
		`invalid character '"' looking for beginning of value: GET "/v1?access_token=` + secret + `"`,
		`a://b@c/webhooks/1/secret "q?x" \" "/v1?access_token=` + secret + `" x`,
		`cut "https://api.test/p \"/v1?token=` + secret + `#frag"`,
		`"/v1#` + secret + `"`,
	} {
		if got := redactText(in); strings.Contains(got, secret) {
			t.Errorf("redactText(%q) = %q keeps the secret", in, got)
		}
	}
	// Text that quotes no reference is kept.
	for _, in := range []string{
		`invalid character '"' after object key`,
		`Get "https://api.test/v1": EOF`,
		`parse "x": y "z" w`,
	} {
		if got := redactText(in); got != in {
			t.Errorf("redactText(%q) = %q, want it unchanged", in, got)
		}
	}
}
