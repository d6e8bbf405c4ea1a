package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// hellangConflict is the problem document that ASP.NET Core's
// Hellang.Middleware.ProblemDetails, and many hand-written handlers after
// it, answer a 409 with: its type is a page about the status
// (https://httpstatuses.io/409), not a problem of the API's own.
const hellangConflict = `{"type":"https://httpstatuses.io/409","title":"Conflict","status":409,"traceId":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}`

// TestProblemTypeNamingTheStatusNamesNoCode: a problem whose type's last
// segment is the status's digits (https://httpstatuses.io/409 on a 409)
// repeats the status, as a "code":"409" does (README, "a string of its
// digits"): it names no code, and the document's own "code" member, if
// any, names the error. It read "409" as the code, which hid the
// document's own code and made a keyed write's 409 after a lost attempt
// look like a conflict of state rather than a key still held.
func TestProblemTypeNamingTheStatusNamesNoCode(t *testing.T) {
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{hellangConflict, 409, ""},
		{`{"type":"https://httpstatuses.io/409","title":"Conflict","status":409,"code":"ORDER_LOCKED"}`, 409, "ORDER_LOCKED"},
		{`{"type":"https://httpstatuses.com/429","title":"Too Many Requests","status":429,"code":"quota_exceeded"}`, 429, "quota_exceeded"},
		{`{"type":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503","title":"Service Unavailable","status":503}`, 503, ""},
		// A number that is not the status is a code of the API's own.
		{`{"type":"https://api.example.com/errors/1234","title":"Card declined","status":402}`, 402, "1234"},
		{`{"type":"https://api.example.com/probs/out-of-credit","title":"No credit","status":403,"code":"other"}`, 403, "out-of-credit"},
	} {
		env, ok := parseStatusEnvelope([]byte(tc.body), true, tc.status)
		if !ok || env.code != tc.want {
			t.Errorf("parseStatusEnvelope(%s, status %d): code %q, %v; want %q", tc.body, tc.status, env.code, ok, tc.want)
		}
	}
}

// TestStateConflictProblemTypeOfTheStatusIsReturned: a keyed write whose
// attempt was lost, and whose resend is answered with a 409 problem whose
// type is a page about the status and whose "code" member names a state
// (https://httpstatuses.io/409 beside "code":"order_already_shipped"), gets
// the server's final word at once, as with the code alone (README, "What is
// retried": a code naming a state), and the caller's APIError names that
// code. The type's "409" hid the code: the 409 read as codeless, a key still
// held, and the write was sent again.
func TestStateConflictProblemTypeOfTheStatusIsReturned(t *testing.T) {
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	body := `{"type":"https://httpstatuses.io/409","title":"Conflict","status":409,"code":"order_already_shipped"}`
	rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 409, header: problem, body: body}, {status: 201}}}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/orders/7/cancel", strings.NewReader("payload"))
	req.Header.Set("Idempotency-Key", "cancel-7")
	resp, err := New(rt, fastRetries).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 409 || rt.numCalls() != 2 {
		t.Errorf("status %d after %d attempts, want 409 after 2", resp.StatusCode, rt.numCalls())
	}
	if e := ParseError(resp); e == nil {
		t.Error("ParseError: nil, want the code order_already_shipped")
	} else if e.Code != "order_already_shipped" {
		t.Errorf("ParseError: code %q, want order_already_shipped", e.Code)
	}
}
