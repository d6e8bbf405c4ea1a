package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestListItemBesideANumericCodeOfItsOwn: a top-level numeric code beside
// "errors" is set aside only when it repeats the status (the README: "A
// numeric code that repeats the HTTP status is none"). A number of the
// API's own is the answer's code, as a string code is, and the items of
// "errors" are its parts: Zoom answers a 400 with {"code":300,"message":
// "Validation Failed.","errors":[{"field":…,"message":…}]}, its code 300
// the one its callers branch on. The number was taken for the status
// whatever the status: the answer lost its code and message, and the first
// item's code (rate_limited) or retryable flag became the answer's, so a
// 400 the caller must fix was retried.
func TestListItemBesideANumericCodeOfItsOwn(t *testing.T) {
	for _, body := range []string{
		`{"code":300,"message":"Validation Failed.","errors":[{"field":"media","code":"rate_limited","message":"the platform is busy"}]}`,
		`{"code":300,"message":"Validation Failed.","errors":[{"field":"media","message":"Invalid field.","retryable":true}]}`,
		`{"code":"300","message":"Validation Failed.","errors":[{"field":"media","message":"Invalid field.","retryable":true}]}`,
	} {
		s := &rtScript{steps: []rtStep{{status: 400, body: body}, {status: 200}}}
		var attempts []Attempt
		tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v2/users/me/meetings", nil))
		resp.Body.Close()
		if s.numCalls() != 1 || attempts[0].Class != Permanent || attempts[0].Code != "300" {
			t.Errorf("%s: %d attempts, class %v, code %q; want one Permanent attempt, code 300", body, s.numCalls(), attempts[0].Class, attempts[0].Code)
		}
		resp = &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
		if e := ParseError(resp); e.Retryable || e.Code != "300" || e.Message != "Validation Failed." {
			t.Errorf("ParseError(%s) = %+v; want code 300 and its message, not retryable", body, e)
		}
	}
}
