package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// keepsFold reports whether s holds rest, in any case of its letters.
func keepsFold(s, rest string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(rest))
}

// credentialRequests returns, by place, the caller's GET of api.test with
// key in each of places a caller puts a credential: "authorization" (a
// bearer token), "x-api-key" (a header of its own) and "query" (the
// api_key parameter).
func credentialRequests(t *testing.T, key string, places ...string) map[string]*http.Request {
	t.Helper()
	const target = "https://api.test/v1/charges"
	reqs := make(map[string]*http.Request, len(places))
	for _, place := range places {
		var req *http.Request
		switch place {
		case "authorization":
			req = newRequest(t, t.Context(), http.MethodGet, target, nil)
			req.Header.Set("Authorization", "Bearer "+key)
		case "x-api-key":
			req = newRequest(t, t.Context(), http.MethodGet, target, nil)
			req.Header.Set("X-Api-Key", key)
		case "query":
			req = newRequest(t, t.Context(), http.MethodGet, target+"?api_key="+url.QueryEscape(key), nil)
		default:
			t.Fatalf("credentialRequests: no place %q", place)
		}
		reqs[place] = req
	}
	return reqs
}

// checkBaseErrorEcho sends req (named name in failures) once over a base
// whose error quotes text, as net/http's "malformed HTTP response" quotes a
// server's status line, and fails t when RoundTrip's error, the attempt's
// log record or the Attempt an observer gets keeps secret.
func checkBaseErrorEcho(t *testing.T, name string, req *http.Request, text, secret string) {
	t.Helper()
	cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "` + text + `"`)
	var log bytes.Buffer
	var atts collector[Attempt]
	tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
		WithObserver(atts.add), WithLogger(slog.New(slog.NewJSONHandler(&log, nil))))
	_, err := roundTrip(t, tr, req)
	if err == nil {
		t.Fatalf("%s: RoundTrip succeeded, want the base's error", name)
	}
	if keepsFold(err.Error(), secret) {
		t.Errorf("%s: RoundTrip's error = %q keeps %q", name, err, secret)
	}
	if keepsFold(log.String(), secret) {
		t.Errorf("%s: log record %s keeps %q", name, log.String(), secret)
	}
	as := atts.all()
	if len(as) != 1 || as[0].Err == nil {
		t.Fatalf("%s: observed %+v, want one attempt with an error", name, as)
	}
	if keepsFold(as[0].Err.Error(), secret) {
		t.Errorf("%s: Attempt.Err = %q keeps %q", name, as[0].Err, secret)
	}
}

// checkAnswerEcho sends req (named name in failures) once over a base that
// answers 401 with an error envelope whose message is text, and text as
// its X-Request-Id, and fails t when the Attempt an observer gets, its log
// record or the APIError a Classifier gets keeps secret.
func checkAnswerEcho(t *testing.T, name string, req *http.Request, text, secret string) {
	t.Helper()
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
	if len(as) != 1 || as[0].Code == "" || as[0].RequestID == "" {
		t.Fatalf("%s: observed %+v, want one attempt with a code and a request id", name, as)
	}
	if keepsFold(as[0].RequestID, secret) {
		t.Errorf("%s: Attempt.RequestID = %q keeps %q", name, as[0].RequestID, secret)
	}
	if keepsFold(log.String(), secret) {
		t.Errorf("%s: log record %s keeps %q", name, log.String(), secret)
	}
	es := apiErrs.all()
	if len(es) != 1 {
		t.Fatalf("%s: Classifier got %d APIErrors, want 1", name, len(es))
	}
	if keepsFold(es[0].Error(), secret) {
		t.Errorf("%s: APIError %q keeps %q", name, es[0].Error(), secret)
	}
}
