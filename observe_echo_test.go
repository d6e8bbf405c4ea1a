package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// callEchoingWithoutRequest makes a GET with echoSecret as its X-Api-Key
// through New(base, opts...), whose base answers a 401 that echoes it in
// its code and message, and names no request (Request nil, which a base
// built by hand, many test doubles and some SDK transports leave).
func callEchoingWithoutRequest(t *testing.T, opts ...Option) {
	t.Helper()
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		body := `{"error":{"code":"unknown_key_` + echoSecret + `","message":"invalid api key ` + echoSecret + `"}}`
		return &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))}, nil
	})
	req, _ := http.NewRequest("GET", "https://api.test/v1/me", nil)
	req.Header.Set("X-Api-Key", echoSecret)
	resp, err := New(base, opts...).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestAttemptCodeRedactsEchoWithoutResponseRequest: the error code of an
// attempt's record, as an observer gets it, has the caller's credential
// that the server echoes in it REDACTED, also when the base's response
// does not name the request it answers: the record knows the caller's
// request itself.
func TestAttemptCodeRedactsEchoWithoutResponseRequest(t *testing.T) {
	var got collector[Attempt]
	callEchoingWithoutRequest(t, WithObserver(got.add))
	as := got.all()
	if len(as) != 1 || as[0].Code == "" {
		t.Fatalf("records %+v, want one with a code", as)
	}
	if strings.Contains(as[0].Code, echoSecret) {
		t.Errorf("Attempt.Code = %q: the caller's X-Api-Key, echoed by the server, not REDACTED", as[0].Code)
	}
}

// TestClassifierAPIErrorRedactsEchoWithoutResponseRequest: the APIError a
// Classifier gets has the caller's credential that the server echoes in
// its code and message REDACTED, also when the base's response does not
// name the request it answers: the Transport knows the attempt's request
// itself.
func TestClassifierAPIErrorRedactsEchoWithoutResponseRequest(t *testing.T) {
	var seen collector[*APIError]
	callEchoingWithoutRequest(t, WithClassifier(func(_ *http.Response, apiErr *APIError, _ error, def Class) Class {
		if apiErr != nil {
			seen.add(apiErr)
		}
		return def
	}))
	errs := seen.all()
	if len(errs) != 1 || errs[0].Code == "" {
		t.Fatalf("APIErrors %+v, want one with a code", errs)
	}
	if s := errs[0].Error(); strings.Contains(s, echoSecret) {
		t.Errorf("APIError %q: the caller's X-Api-Key, echoed by the server, not REDACTED", s)
	}
}
