package resilient

import (
	"net/http"
	"testing"
)

// TestRedactionBearerNamedTokenRepeated: an error answer whose message
// names a token after "Bearer " and repeats it in a URL's path, a query
// value percent-encoded in another URL, or after a parameter's '=' (a
// base64 token's padding), keeps it in none of the Attempt an observer
// gets, its log record or the APIError a Classifier gets. Replaced only
// where bytes no credential holds set it apart, the token stood whole in
// each.
func TestRedactionBearerNamedTokenRepeated(t *testing.T) {
	for _, tc := range []struct{ text, tok string }{
		{"Bearer tok_1234abcd expired: DELETE /v1/tokens/tok_1234abcd/sessions", "tok_1234abcd"},
		{"Bearer tok_1234abcd expired; redirect_uri=https%3A%2F%2Fapp.test%2Fcb%3Ftoken%3Dtok_1234abcd", "tok_1234abcd"},
		{"Bearer dGhpc2lzYXRva2VuMTI= expired: /v1?access_token=dGhpc2lzYXRva2VuMTI=&x=1", "dGhpc2lzYXRva2VuMTI="},
	} {
		req := newRequest(t, t.Context(), http.MethodGet, "https://api.test/v1/charges", nil)
		checkAnswerEcho(t, "token "+tc.tok, req, tc.text, tc.tok)
	}
}
