package resilient

import (
	"bytes"
	"log/slog"
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
		body := `{"error":{"code":"invalid_token","message":"` + tc.text + `"}}`
		var log bytes.Buffer
		var atts collector[Attempt]
		var apiErrs collector[*APIError]
		tr := New(&rtScript{steps: []rtStep{{status: http.StatusUnauthorized, body: body,
			header: http.Header{"X-Request-Id": {tc.text}}}}},
			WithMaxRetries(0), WithObserver(atts.add), WithLogger(slog.New(slog.NewJSONHandler(&log, nil))),
			WithClassifier(func(_ *http.Response, apiErr *APIError, _ error, def Class) Class {
				if apiErr != nil {
					apiErrs.add(apiErr)
				}
				return def
			}))
		req := newRequest(t, t.Context(), http.MethodGet, "https://api.test/v1/charges", nil)
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("RoundTrip = %v, want the 401", err)
		}
		resp.Body.Close()
		as := atts.all()
		if len(as) != 1 || as[0].RequestID == "" {
			t.Fatalf("observed %+v, want one attempt with a request id", as)
		}
		if keepsFold(as[0].RequestID, tc.tok) {
			t.Errorf("Attempt.RequestID = %q keeps the token %q", as[0].RequestID, tc.tok)
		}
		if keepsFold(log.String(), tc.tok) {
			t.Errorf("log record %s keeps the token %q", log.String(), tc.tok)
		}
		if es := apiErrs.all(); len(es) != 1 || keepsFold(es[0].Error(), tc.tok) {
			t.Errorf("Classifier got %v, want one APIError without the token %q", es, tc.tok)
		}
	}
}
