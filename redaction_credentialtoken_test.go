package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
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
	header := newRequest(t, t.Context(), http.MethodGet, "https://api.test/v1/charges", nil)
	header.Header.Set("X-Api-Key", credentialTokenKey)
	query := newRequest(t, t.Context(), http.MethodGet, "https://api.test/v1/charges?api_key="+url.QueryEscape(credentialTokenKey), nil)
	return map[string]*http.Request{"x-api-key": header, "query": query}
}

// TestRedactionCredentialHoldingTokenBaseError: a base error that quotes
// a server's text echoing the caller's credential, which holds a JSON Web
// Token after its key id, keeps no part of it in RoundTrip's error, in
// the attempt's log record or in the Attempt an observer gets. The token
// was replaced where it stood before the credential was looked for, which
// then was no longer whole in the text: its key id stayed.
func TestRedactionCredentialHoldingTokenBaseError(t *testing.T) {
	for name, req := range credentialTokenRequests(t) {
		cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "invalid key ` + credentialTokenKey + `"`)
		var log bytes.Buffer
		var atts collector[Attempt]
		tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
			WithObserver(atts.add), WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
		_, err := roundTrip(t, tr, req)
		if err == nil {
			t.Fatalf("%s: RoundTrip succeeded, want the base's error", name)
		}
		if keepsFold(err.Error(), credentialTokenRest) {
			t.Errorf("%s: RoundTrip's error = %q keeps %q of the caller's key", name, err, credentialTokenRest)
		}
		if keepsFold(log.String(), credentialTokenRest) {
			t.Errorf("%s: log record %s keeps %q of the caller's key", name, log.String(), credentialTokenRest)
		}
		as := atts.all()
		if len(as) != 1 || as[0].Err == nil {
			t.Fatalf("%s: observed %+v, want one attempt with an error", name, as)
		}
		if keepsFold(as[0].Err.Error(), credentialTokenRest) {
			t.Errorf("%s: Attempt.Err = %q keeps %q of the caller's key", name, as[0].Err, credentialTokenRest)
		}
	}
}

// TestRedactionCredentialHoldingTokenAnswer: an error answer whose
// message and request id echo the caller's credential, which holds a JSON
// Web Token after its key id, keeps no part of it in the Attempt an
// observer gets, in its log record or in the APIError a Classifier gets.
func TestRedactionCredentialHoldingTokenAnswer(t *testing.T) {
	for name, req := range credentialTokenRequests(t) {
		text := "invalid key " + credentialTokenKey
		body := `{"error":{"code":"invalid_api_key","message":"` + text + `"}}`
		var log bytes.Buffer
		var atts collector[Attempt]
		var apiErrs collector[*APIError]
		tr := New(&rtScript{steps: []rtStep{{status: http.StatusUnauthorized, body: body,
			header: http.Header{"X-Request-Id": {text}}}}},
			WithMaxRetries(0), WithObserver(atts.add), WithLogger(slog.New(slog.NewJSONHandler(&log, nil))),
			WithClassifier(func(_ *http.Response, apiErr *APIError, _ error, def Class) Class {
				if apiErr != nil {
					apiErrs.add(apiErr)
				}
				return def
			}))
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("%s: RoundTrip = %v, want the 401", name, err)
		}
		resp.Body.Close()
		as := atts.all()
		if len(as) != 1 || as[0].RequestID == "" {
			t.Fatalf("%s: observed %+v, want one attempt with a request id", name, as)
		}
		if keepsFold(as[0].RequestID, credentialTokenRest) {
			t.Errorf("%s: Attempt.RequestID = %q keeps %q of the caller's key", name, as[0].RequestID, credentialTokenRest)
		}
		if keepsFold(log.String(), credentialTokenRest) {
			t.Errorf("%s: log record %s keeps %q of the caller's key", name, log.String(), credentialTokenRest)
		}
		es := apiErrs.all()
		if len(es) != 1 {
			t.Fatalf("%s: Classifier got %d APIErrors, want 1", name, len(es))
		}
		if keepsFold(es[0].Error(), credentialTokenRest) {
			t.Errorf("%s: APIError %q keeps %q of the caller's key", name, es[0].Error(), credentialTokenRest)
		}
	}
}
