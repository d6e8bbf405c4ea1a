package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAttemptCodeRedactsEchoWithoutResponseRequest: the error code of an
// attempt's record, as an observer gets it, has the caller's credential
// that the server echoes in it REDACTED, also when the base's response
// does not name the request it answers (Request nil, which a base built
// by hand may leave): the record knows the caller's request itself.
func TestAttemptCodeRedactsEchoWithoutResponseRequest(t *testing.T) {
	const secret = "k3y-0123456789abcdef" // no known token shape: redacted as the request's own
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		body := `{"error":{"code":"unknown_key_` + secret + `","message":"invalid api key"}}`
		return &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))}, nil
	})
	var got collector[Attempt]
	tr := New(base, WithObserver(got.add))
	req, _ := http.NewRequest("GET", "https://api.test/v1/me", nil)
	req.Header.Set("X-Api-Key", secret)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	as := got.all()
	if len(as) != 1 || as[0].Code == "" {
		t.Fatalf("records %+v, want one with a code", as)
	}
	if strings.Contains(as[0].Code, secret) {
		t.Errorf("Attempt.Code = %q: the caller's X-Api-Key, echoed by the server, not REDACTED", as[0].Code)
	}
}

// TestClassifierAPIErrorRedactsEchoWithoutResponseRequest: the APIError a
// Classifier gets has the caller's credential that the server echoes in
// its code and message REDACTED, also when the base's response does not
// name the request it answers (Request nil, as many test doubles and some
// SDK transports leave it): the Transport knows the attempt's request
// itself.
func TestClassifierAPIErrorRedactsEchoWithoutResponseRequest(t *testing.T) {
	const secret = "k3y-0123456789abcdef" // no known token shape: redacted as the request's own
	calls := 0
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		body := `{"error":{"code":"unknown_key_` + secret + `","message":"invalid api key ` + secret + `"}}`
		return &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))}, nil
	})
	var seen collector[*APIError]
	tr := New(base, WithClassifier(func(_ *http.Response, apiErr *APIError, _ error, def Class) Class {
		if apiErr != nil {
			seen.add(apiErr)
		}
		return def
	}))
	req, _ := http.NewRequest("GET", "https://api.test/v1/me", nil)
	req.Header.Set("X-Api-Key", secret)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	errs := seen.all()
	if len(errs) != 1 || calls != 1 || errs[0].Code == "" {
		t.Fatalf("APIErrors %+v of %d calls, want one with a code of 1", errs, calls)
	}
	if s := errs[0].Error(); strings.Contains(s, secret) {
		t.Errorf("APIError %q: the caller's X-Api-Key, echoed by the server, not REDACTED", s)
	}
}
