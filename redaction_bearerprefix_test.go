package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// bearerPrefixKey is the caller's credential of the tests below; a
// hostile server names its first bytes, or its last, as a token.
const bearerPrefixKey = "sk_live_ABCDEFGHIJKLMNOP"

// bearerPrefixTexts are server texts that name a part of bearerPrefixKey
// after "Bearer " and quote the whole key elsewhere (in a sentence, after
// a query parameter's name, in a header it echoes, in either order), each
// with the rest of the key, which the part named does not cover: the text
// must not keep it once redacted.
var bearerPrefixTexts = []struct{ text, rest string }{
	{"Bearer " + bearerPrefixKey[:12] + " is not valid; your key " + bearerPrefixKey + " was refused", bearerPrefixKey[12:]},
	{"your key " + bearerPrefixKey + " was refused; Bearer " + bearerPrefixKey[:12], bearerPrefixKey[12:]},
	{"Bearer " + bearerPrefixKey[:8] + " unknown, see /v1/charges?api_key=" + bearerPrefixKey + "&limit=1", bearerPrefixKey[8:]},
	{"Bearer " + bearerPrefixKey[:len(bearerPrefixKey)-1] + " rejected; X-Api-Key: " + bearerPrefixKey + ".", bearerPrefixKey[len(bearerPrefixKey)-4:]},
	{"Bearer " + bearerPrefixKey[12:] + " rejected; key=" + bearerPrefixKey, bearerPrefixKey[:12]},
	{"BEARER " + strings.ToUpper(bearerPrefixKey[:10]) + " REJECTED: " + strings.ToUpper(bearerPrefixKey), bearerPrefixKey[10:]},
}

// bearerPrefixRequests returns the caller's request to api.test with
// bearerPrefixKey in each place a caller puts a credential.
func bearerPrefixRequests(t *testing.T) map[string]*http.Request {
	t.Helper()
	return credentialRequests(t, bearerPrefixKey, "authorization", "x-api-key", "query")
}

// TestRedactionBearerPrefixOfCallersKeyBaseError: a base error that quotes
// a server's text (net/http's "malformed HTTP response" quotes its status
// line) naming the first bytes of the caller's key after "Bearer ", and
// the whole key elsewhere, keeps no part of the key in RoundTrip's error,
// in the attempt's log record or in the Attempt an observer gets. The
// token the text named was replaced everywhere first, inside the whole
// key too, which left REDACTED and the key's rest, no longer the key.
func TestRedactionBearerPrefixOfCallersKeyBaseError(t *testing.T) {
	for name, req := range bearerPrefixRequests(t) {
		for _, tc := range bearerPrefixTexts {
			checkBaseErrorEcho(t, name, req, tc.text, tc.rest)
		}
	}
}

// TestRedactionBearerPrefixOfCallersKeyAnswer: an error answer whose code,
// message and request id name the first bytes of the caller's key after
// "Bearer ", and the whole key elsewhere, keeps no part of the key in the
// Attempt an observer gets, in its log record or in the APIError a
// Classifier gets.
func TestRedactionBearerPrefixOfCallersKeyAnswer(t *testing.T) {
	for name, req := range bearerPrefixRequests(t) {
		for _, tc := range bearerPrefixTexts {
			checkAnswerEcho(t, name, req, tc.text, tc.rest)
		}
	}
}
