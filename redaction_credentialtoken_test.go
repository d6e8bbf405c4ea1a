package resilient

import (
	"net/http"
	"testing"
)

// credentialTokenKey is the caller's credential of the tests below: an
// access key id, then a JSON Web Token, sent together.
const credentialTokenKey = "AKIA1234:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

// credentialTokenRest is the part of credentialTokenKey before its token.
const credentialTokenRest = "AKIA1234"

// credentialTokenRequests returns the caller's request to api.test with
// credentialTokenKey in a header and in a query parameter.
func credentialTokenRequests(t *testing.T) map[string]*http.Request {
	t.Helper()
	return credentialRequests(t, credentialTokenKey, "x-api-key", "query")
}

// TestRedactionCredentialHoldingTokenBaseError: a base error that quotes
// a server's text echoing the caller's credential, which holds a JSON Web
// Token after its key id, keeps no part of it in RoundTrip's error, in
// the attempt's log record or in the Attempt an observer gets. The token
// was replaced where it stood before the credential was looked for, which
// then was no longer whole in the text: its key id stayed.
func TestRedactionCredentialHoldingTokenBaseError(t *testing.T) {
	for name, req := range credentialTokenRequests(t) {
		checkBaseErrorEcho(t, name, req, "invalid key "+credentialTokenKey, credentialTokenRest)
	}
}

// TestRedactionCredentialHoldingTokenAnswer: an error answer whose
// message and request id echo the caller's credential, which holds a JSON
// Web Token after its key id, keeps no part of it in the Attempt an
// observer gets, in its log record or in the APIError a Classifier gets.
func TestRedactionCredentialHoldingTokenAnswer(t *testing.T) {
	for name, req := range credentialTokenRequests(t) {
		checkAnswerEcho(t, name, req, "invalid key "+credentialTokenKey, credentialTokenRest)
	}
}
