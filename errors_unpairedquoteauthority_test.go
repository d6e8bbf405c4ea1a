package resilient

import (
	"strings"
	"testing"
)

// TestRedactTextUnpairedQuoteAuthority: afterQuotes removed the query and
// fragment of a reference after a quote that redactQuoted paired wrongly,
// but not the user information nor a session id, which redactQuoted
// removes from a string that holds an '@' or a ';': after a quote that
// opens nothing (encoding/json's `invalid character '"'`), net/http's
// quoted proxy address ("user:pass@proxy:8080") and url.Parse's quoted
// port (":443;jsessionid=…") were logged whole.
func TestRedactTextUnpairedQuoteAuthority(t *testing.T) {
	const secret = "s3cretpassword"
	const unpaired = `invalid character '"' looking for beginning of value; `
	for _, in := range []string{
		unpaired + `invalid proxy address "user:` + secret + `@proxy:8080": first path segment in URL cannot contain colon`,
		unpaired + `parse "https://api.test:443;jsessionid=` + secret + `/v1": invalid port ":443;jsessionid=` + secret + `" after host`,
		`\" "alice:` + secret + `@proxy.internal:3128" x`,
	} {
		if got := redactText(in); strings.Contains(got, secret) {
			t.Errorf("redactText(%q) = %q keeps the secret", in, got)
		}
	}
}
