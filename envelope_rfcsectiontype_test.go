package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// aspNetConflict is the problem document ASP.NET Core answers a 409 with
// by default ([ApiController]'s client error mapping, AddProblemDetails):
// its type links to the section of the HTTP specification that defines the
// status, not to a problem of the API's own.
const aspNetConflict = `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.10","title":"Conflict","status":409,"traceId":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}`

// TestProblemTypeOfTheHTTPSpecNamesNoCode: a problem whose type is a link
// into an RFC (the section that defines its status, as ASP.NET Core's
// problem documents have it, under every host the RFCs are served from)
// has no code of its own, as about:blank has none: its "code" member, if
// any, names the error, else nothing does. It read the section's anchor
// ("section-15.5.10") as the code, which hid the document's own code and
// made a keyed write's 409 after a lost attempt look like a conflict of
// state rather than a key still held.
func TestProblemTypeOfTheHTTPSpecNamesNoCode(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{aspNetConflict, ""},
		{`{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1","title":"One or more validation errors occurred.","status":400,"errors":{"Name":["required"]}}`, ""},
		{`{"type":"https://datatracker.ietf.org/doc/html/rfc9110#section-15.6.4","title":"Service Unavailable","status":503,"code":"rate_limit_exceeded"}`, "rate_limit_exceeded"},
		{`{"type":"https://www.rfc-editor.org/rfc/rfc9110.html#name-409-conflict","title":"Conflict","status":409}`, ""},
		{`{"type":"https://www.rfc-editor.org/rfc/rfc6585#section-4","title":"Too Many Requests","status":429,"code":"quota-exceeded"}`, "quota-exceeded"},
		{`{"type":"https://httpwg.org/specs/rfc9110.html#status.409","title":"Conflict","status":409}`, ""},
		{`{"type":"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.10","title":"Conflict","status":409}`, ""},
		// Any spelling of the link: http, any case, a trailing slash, a
		// query, no anchor.
		{`{"type":"http://tools.ietf.org/html/rfc9110#section-15.5.10","status":409}`, ""},
		{`{"type":"HTTPS://Tools.IETF.org/HTML/RFC9110#SECTION-15.5.10","status":409}`, ""},
		{`{"type":"https://www.rfc-editor.org/rfc/rfc9110/","status":409}`, ""},
		{`{"type":"https://www.rfc-editor.org/rfc/rfc9110.html?v=1#status.409","status":409}`, ""},
		{`{"type":"https://tools.ietf.org/html/rfc6585#section-4","title":"Too Many Requests","status":429}`, ""},
		// A problem type of the API's own keeps naming the error, on
		// any other host, or in another document of the IETF's, or
		// under a path of those hosts that is no RFC.
		{`{"type":"https://httpwg.org/problems/out-of-credit","status":403}`, "out-of-credit"},
		{`{"type":"https://www.w3.org/ns/problems/rfc-quota","status":429}`, "rfc-quota"},
		{`{"type":"https://tools.ietf.org/html/rfc","status":400}`, "rfc"},
		{`{"type":"https://tools.ietf.org/","status":400}`, "tools.ietf.org"},
		{`{"type":"https://","status":400}`, ""},
		{`{"type":"https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-idempotency-key-header#idempotency","title":"Key missing","status":400}`, "idempotency"},
		{`{"type":"https://example.com/probs/out-of-credit","title":"No credit","status":403,"code":"other"}`, "out-of-credit"},
	} {
		for _, problem := range []bool{true, false} {
			env, ok := parseStatusEnvelope([]byte(tc.body), problem, 0)
			if !ok || env.code != tc.want {
				t.Errorf("parseStatusEnvelope(%s, problem %v): code %q, %v; want %q", tc.body, problem, env.code, ok, tc.want)
			}
		}
	}
}

// TestKeyHeldByLostAttemptIsRetriedProblemOfTheHTTPSpec: a keyed write
// whose attempt was lost, and whose resend an ASP.NET Core host answers
// with its default 409 problem document (no code of the API's own, see
// TestProblemTypeOfTheHTTPSpecNamesNoCode), is retried with the same key,
// as a 409 without a code is (README, "What is retried").
func TestKeyHeldByLostAttemptIsRetriedProblemOfTheHTTPSpec(t *testing.T) {
	problem := http.Header{"Content-Type": {"application/problem+json; charset=utf-8"}}
	rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 409, header: problem, body: aspNetConflict}, {status: 201}}}
	resp := postKeyed(t, New(rt, fastRetries), "https://api.example.com/v1/orders", "order-7")
	if resp.StatusCode != 201 || rt.numCalls() != 3 {
		t.Errorf("status %d after %d attempts, want 201 after 3", resp.StatusCode, rt.numCalls())
	}
	if keys := strings.Join(rt.headers("Idempotency-Key"), ","); keys != "order-7,order-7,order-7" {
		t.Errorf("keys %q, want order-7 on every attempt", keys)
	}
}
