package resilient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// codeRow is one error code of the built-in tables, in its vendor's
// envelope and with the status the vendor documents for it.
type codeRow struct {
	dialect string // aidelly, altyaa, postato or code-message
	code    string
	status  int
	class   Class // from the vendors' documentation, not from codes.go
}

var codeRows = []codeRow{
	// Aidelly's error catalog (seeds/aidelly-error-catalog.txt).
	{"aidelly", "PUBLIC_API_AUTH_REQUIRED", 401, Permanent},
	{"aidelly", "PUBLIC_API_KEY_INVALID", 401, Permanent},
	{"aidelly", "PUBLIC_API_KEY_EXPIRED", 401, Permanent},
	{"aidelly", "PUBLIC_API_SCOPE_FORBIDDEN", 403, Permanent},
	{"aidelly", "PUBLIC_API_WORKSPACE_FORBIDDEN", 403, Permanent},
	{"aidelly", "PUBLIC_API_BRAND_FORBIDDEN", 403, Permanent},
	{"aidelly", "PUBLIC_API_CONTEXT_ERROR", 500, Transient},
	{"aidelly", "PUBLIC_API_AUTH_ERROR", 500, Transient},
	{"aidelly", "PUBLIC_API_RATE_LIMITED", 429, Throttled},
	{"aidelly", "PUBLIC_API_IDEMPOTENCY_REQUIRED", 400, Permanent},
	{"aidelly", "PUBLIC_API_IDEMPOTENCY_CONFLICT", 409, Permanent},
	{"aidelly", "PUBLIC_API_BODY_INVALID", 400, Permanent},
	{"aidelly", "PUBLIC_API_QUERY_INVALID", 400, Permanent},
	{"aidelly", "PUBLIC_API_MEDIA_CREATE_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_UPLOAD_URL_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_POST_LIST_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_POST_CREATE_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_PUBLISH_FAILED", 422, Permanent},
	{"aidelly", "PUBLIC_API_POST_FETCH_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_POST_NOT_FOUND", 404, Permanent},
	{"aidelly", "PUBLIC_API_POST_CANCEL_INVALID_STATE", 409, Permanent},
	{"aidelly", "PUBLIC_API_POST_CANCEL_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_CONNECTIONS_FETCH_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_WEBHOOK_CREATE_FAILED", 500, Transient},
	{"aidelly", "PUBLIC_API_USAGE_FETCH_FAILED", 500, Transient},
	// Altyaa's common error codes (seeds/altyaa-error-codes.txt).
	{"altyaa", "unauthorized", 401, Permanent},
	{"altyaa", "forbidden", 403, Permanent},
	{"altyaa", "invalid_request", 400, Permanent},
	{"altyaa", "not_found", 404, Permanent},
	{"altyaa", "conflict", 409, Permanent},
	{"altyaa", "rate_limit_exceeded", 429, Throttled},
	{"altyaa", "service_unavailable", 503, Transient},
	// Postato's status table (seeds/postato-error-handling.txt).
	{"postato", "INVALID_REQUEST", 400, Permanent},
	{"postato", "permission_denied", 403, Permanent},
	{"postato", "plan_inactive", 403, Permanent},
	{"postato", "policy_violation", 403, Permanent},
	{"postato", "workspace_required", 403, Permanent},
	{"postato", "not_found", 404, Permanent},
	{"postato", "VALIDATION_FAILED", 422, Permanent},
	// Other APIs' throttling codes, in any case, '-' or '_', sent with a
	// 403 (as some APIs do) so that only the code can make them Throttled.
	{"code-message", "rate_limited", 403, Throttled},
	{"code-message", "RATE_LIMITED", 403, Throttled},
	{"code-message", "Rate-Limited", 403, Throttled},
	{"code-message", "RATE-LIMIT-EXCEEDED", 403, Throttled},
	{"code-message", "too_many_requests", 403, Throttled},
	{"code-message", "Too_Many_Requests", 403, Throttled},
	{"code-message", "TOO-MANY-REQUESTS", 403, Throttled},
	{"code-message", "throttled", 403, Throttled},
	{"code-message", "Throttled", 403, Throttled},
	{"code-message", "quota_exceeded", 403, Throttled},
	{"code-message", "quota-exceeded", 403, Throttled},
	{"code-message", "Quota-Exceeded", 403, Throttled},
}

// want is what ParseError and the Transport must report for the row's
// response (built by response).
func (r codeRow) want() APIError {
	e := APIError{StatusCode: r.status, Code: r.code, Message: r.code + " happened", Dialect: r.dialect, Retryable: r.class.Retryable()}
	if r.dialect == "code-message" {
		e.Dialect = "generic" // the shape names no vendor
	}
	switch r.dialect {
	case "aidelly":
		e.RequestID = "7f3a9c1e-" + r.code
	case "altyaa":
		e.RequestID = "alt-" + r.code
		e.Details = json.RawMessage(`{"field":"publishAt","reason":"value is in the past"}`)
	case "postato":
		e.RequestID = "pst-" + r.code
		e.Details = json.RawMessage(`{"content":["Required"]}`)
	case "code-message":
		e.RequestID = "corr-" + r.code
	}
	return e
}

// response returns the row's error response in its vendor's envelope.
func (r codeRow) response() rtStep {
	msg := r.code + " happened"
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	var body string
	switch r.dialect {
	case "aidelly":
		// The body's request id wins over a header.
		h.Set("X-Request-Id", "from-header")
		body = fmt.Sprintf(`{"success":false,"error":{"code":%q,"message":%q},"request_id":"7f3a9c1e-%s"}`, r.code, msg, r.code)
	case "altyaa":
		h.Set("Request-Id", "alt-"+r.code)
		body = fmt.Sprintf(`{
  "error": {
    "code": %q,
    "message": %q,
    "details": {"field":"publishAt","reason":"value is in the past"}
  }
}`, r.code, msg)
	case "postato":
		h.Set("X-Request-Id", "pst-"+r.code)
		body = fmt.Sprintf(`{"error":%q,"message":%q,"details":{"content":["Required"]}}`, r.code, msg)
	case "code-message":
		h.Set("X-Correlation-Id", "corr-"+r.code)
		body = fmt.Sprintf(`{"code":%q,"message":%q}`, r.code, msg)
	}
	return rtStep{status: r.status, header: h, body: body}
}

func newResponse(st rtStep) *http.Response {
	resp, _ := (&rtScript{steps: []rtStep{st}}).RoundTrip(httptest.NewRequest("GET", "http://api.test/", nil))
	return resp
}

func checkAPIError(t *testing.T, got *APIError, want APIError) {
	t.Helper()
	if got == nil {
		t.Fatalf("APIError = nil, want %+v", want)
	}
	gd, wd := compactJSON(got.Details), compactJSON(want.Details)
	g, w := *got, want
	g.Details, w.Details = nil, nil
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) || gd != wd {
		t.Errorf("APIError =\n\t%+v details %s\nwant\n\t%+v details %s", g, gd, w, wd)
	}
}

func compactJSON(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "invalid JSON: " + string(b)
	}
	return buf.String()
}

func TestCodeTables(t *testing.T) {
	// Every code of the built-in tables has a row.
	covered := func(code string, fold bool) bool {
		for _, r := range codeRows {
			if r.code == code || fold && isThrottleCode(r.code) && foldEqual(code, r.code) {
				return true
			}
		}
		return false
	}
	for _, tbl := range [][]codeEntry{aidellyCodes[:], altyaaCodes[:], postatoCodes[:]} {
		for _, e := range tbl {
			if !covered(e.code, false) {
				t.Errorf("code %s of the built-in tables has no test row", e.code)
			}
		}
	}
	for _, c := range throttleCodes {
		if !covered(c, true) {
			t.Errorf("throttling code %s has no test row", c)
		}
	}

	for _, r := range codeRows {
		// The documented status, then a contradicting one: a known code
		// wins over the status.
		contra := 503
		if r.class.Retryable() {
			contra = 400
		}
		for _, status := range []int{r.status, contra} {
			r := r
			r.status = status
			t.Run(fmt.Sprintf("%s/%d", r.code, status), func(t *testing.T) {
				want := r.want()
				resp := newResponse(r.response())
				body := readBodyAfter(t, resp, func() { checkAPIError(t, ParseError(resp), want) })
				if !strings.Contains(body, r.code) {
					t.Errorf("body after ParseError = %q", body)
				}

				// Through the Transport.
				keyRetry := r.code == "PUBLIC_API_IDEMPOTENCY_REQUIRED" && status == 400
				s := &rtScript{steps: []rtStep{r.response(), {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				resp, _ = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				resp.Body.Close()
				a := attempts[0]
				if a.Code != r.code || a.RequestID != want.RequestID || a.Class != r.class || a.StatusCode != status {
					t.Errorf("observed code %q request id %q class %v status %d; want %q %q %v %d",
						a.Code, a.RequestID, a.Class, a.StatusCode, r.code, want.RequestID, r.class, status)
				}
				retried := r.class.Retryable() || keyRetry
				if n := s.numCalls(); n != map[bool]int{false: 1, true: 2}[retried] || a.Retry != retried {
					t.Errorf("attempts = %d, Retry = %v; want retried = %v", n, a.Retry, retried)
				}
				if keyRetry && s.call(1).header.Get("Idempotency-Key") == "" {
					t.Error("the retry of PUBLIC_API_IDEMPOTENCY_REQUIRED carries no key")
				}
			})
		}
	}
}

// readBodyAfter runs f, then reads resp's whole body.
func readBodyAfter(t *testing.T, resp *http.Response, f func()) string {
	t.Helper()
	f()
	return readBody(t, resp)
}

func TestParseErrorShapes(t *testing.T) {
	const problemCT = "application/problem+json"
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   APIError
	}{
		{"aidelly", 429, http.Header{"Retry-After": {"30"}},
			`{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded"},"request_id":"7f3a9c1e-0b2d-4c5e"}`,
			APIError{StatusCode: 429, Code: "PUBLIC_API_RATE_LIMITED", Message: "Rate limit exceeded", RequestID: "7f3a9c1e-0b2d-4c5e", Retryable: true, RetryAfter: 30 * time.Second, Dialect: "aidelly"}},
		{"altyaa", 400, http.Header{"X-Request-Id": {"req-alt"}},
			`{"error":{"code":"invalid_request","message":"publishAt must be a future timestamp","details":{"field":"publishAt","reason":"value is in the past"}}}`,
			APIError{StatusCode: 400, Code: "invalid_request", Message: "publishAt must be a future timestamp", Details: json.RawMessage(`{"field":"publishAt","reason":"value is in the past"}`), RequestID: "req-alt", Dialect: "altyaa"}},
		{"postato", 400, http.Header{"X-Request-Id": {"req-pst"}},
			`{"error":"INVALID_REQUEST","message":"Body failed validation","details":{"content":["Required"]}}`,
			APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "Body failed validation", Details: json.RawMessage(`{"content":["Required"]}`), RequestID: "req-pst", Dialect: "postato"}},
		{"postato platform", 422, nil,
			`{"postId":"pst_1","status":"failed","error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"Instagram rejected: file exceeds 100 MB","platformRawCode":"2207026","retryable":false}}`,
			APIError{StatusCode: 422, Code: "MEDIA_TOO_LARGE", Message: "Instagram rejected: file exceeds 100 MB", Dialect: "postato"}},
		{"postato platform retryable", 422, nil,
			`{"error":{"origin":"platform","code":"UPSTREAM_BUSY","message":"later","retryable":true}}`,
			APIError{StatusCode: 422, Code: "UPSTREAM_BUSY", Message: "later", Retryable: true, Dialect: "postato"}},
		{"problem+json", 403, http.Header{"Content-Type": {problemCT}},
			`{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403,"detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc"}`,
			APIError{StatusCode: 403, Code: "out-of-credit", Message: "Your current balance is 30, but that costs 50.", Dialect: "problem+json"}},
		{"problem+json about:blank", 503, http.Header{"Content-Type": {problemCT + "; charset=utf-8"}},
			`{"type":"about:blank","title":"Service Unavailable","status":503}`,
			APIError{StatusCode: 503, Message: "Service Unavailable", Retryable: true, Dialect: "problem+json"}},
		{"problem+json without type", 429, http.Header{"Content-Type": {problemCT}},
			`{"title":"Too Many Requests","status":429,"detail":"slow down"}`,
			APIError{StatusCode: 429, Message: "slow down", Retryable: true, Dialect: "problem+json"}},
		{"problem+json type with slash and fragment", 409, http.Header{"Content-Type": {problemCT}},
			`{"type":"https://api.example.com/errors/conflict/","title":"Conflict","status":409}`,
			APIError{StatusCode: 409, Code: "conflict", Message: "Conflict", Dialect: "problem+json"}},
		{"problem+json urn", 429, http.Header{"Content-Type": {problemCT}},
			`{"type":"urn:problem-type:rate_limited","title":"Slow down","status":429}`,
			APIError{StatusCode: 429, Code: "rate_limited", Message: "Slow down", Retryable: true, Dialect: "problem+json"}},
		{"problem+json with an extension code", 503, http.Header{"Content-Type": {problemCT}},
			`{"type":"about:blank","title":"Service Unavailable","status":503,"code":"PUBLIC_API_POST_NOT_FOUND"}`,
			APIError{StatusCode: 503, Code: "PUBLIC_API_POST_NOT_FOUND", Message: "Service Unavailable", Dialect: "problem+json"}},
		{"problem by its members, JSON content type", 404, nil,
			`{"type":"https://example.com/probs/no-such-post","title":"Not found","status":404}`,
			APIError{StatusCode: 404, Code: "no-such-post", Message: "Not found", Dialect: "problem+json"}},
		{"errors array", 422, http.Header{"Request-Id": {"req-arr"}},
			`{"errors":[{"code":"VALIDATION_FAILED","message":"caption too long","details":{"max":2200}},{"code":"other","message":"second"}]}`,
			APIError{StatusCode: 422, Code: "VALIDATION_FAILED", Message: "caption too long", Details: json.RawMessage(`{"max":2200}`), RequestID: "req-arr", Dialect: "generic"}},
		{"errors array numeric code", 500, nil,
			`{"errors":[{"code":1001,"message":"db down"}],"meta":{"request_id":"meta-1"}}`,
			APIError{StatusCode: 500, Code: "1001", Message: "db down", RequestID: "meta-1", Retryable: true, Dialect: "generic"}},
		{"top-level code", 409, http.Header{"X-Correlation-Id": {"corr-9"}},
			`{"code":"conflict","message":"duplicate slug"}`,
			APIError{StatusCode: 409, Code: "conflict", Message: "duplicate slug", RequestID: "corr-9", Dialect: "generic"}},
		{"top-level numeric code", 400, nil,
			`{"code":-32602,"message":"Invalid params","requestId":"rq-7"}`,
			APIError{StatusCode: 400, Code: "-32602", Message: "Invalid params", RequestID: "rq-7", Dialect: "generic"}},
		{"numeric code in an error object", 503, nil,
			`{"error":{"code":503.1,"message":"x"}}`,
			APIError{StatusCode: 503, Code: "503.1", Message: "x", Retryable: true, Dialect: "generic"}},
		{"request id in the body wins", 400, http.Header{"X-Request-Id": {"hdr"}},
			`{"error":"INVALID_REQUEST","message":"m","request_id":"body"}`,
			APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "m", RequestID: "body", Dialect: "postato"}},
		{"request id header order", 400, http.Header{"X-Correlation-Id": {"c"}, "Request-Id": {"r"}, "X-Request-Id": {"x"}},
			`{"code":"x","message":"m"}`,
			APIError{StatusCode: 400, Code: "x", Message: "m", RequestID: "x", Dialect: "generic"}},
		{"Request-Id before X-Correlation-Id", 400, http.Header{"X-Correlation-Id": {"c"}, "Request-Id": {"r"}},
			`{"code":"x","message":"m"}`,
			APIError{StatusCode: 400, Code: "x", Message: "m", RequestID: "r", Dialect: "generic"}},
		{"GitHub's request id", 422, http.Header{http.CanonicalHeaderKey("X-GitHub-Request-Id"): {"CB4E:1F2A:3C"}},
			`{"message":"Validation Failed","errors":[{"code":"missing_field"}]}`,
			APIError{StatusCode: 422, Code: "missing_field", Message: "Validation Failed", RequestID: "CB4E:1F2A:3C", Dialect: "generic"}},
		{"AWS request ids, the common names first", 400, http.Header{http.CanonicalHeaderKey("x-amzn-RequestId"): {"amzn"}, http.CanonicalHeaderKey("x-amz-request-id"): {"amz"}},
			`{"code":"x","message":"m"}`,
			APIError{StatusCode: 400, Code: "x", Message: "m", RequestID: "amzn", Dialect: "generic"}},
		{"escapes", 400, nil,
			`{"error":{"code":"caf\u00e9","message":"line\none \"quoted\" \ud83d\ude00 \/ \\"}}`,
			APIError{StatusCode: 400, Code: "café", Message: "line\none \"quoted\" 😀 / \\", Dialect: "generic"}},
		{"OAuth-style error", 401, nil,
			`{"error":"invalid_token","error_description":"The access token expired"}`,
			APIError{StatusCode: 401, Code: "invalid_token", Message: "The access token expired", Dialect: "generic"}},
		{"null details", 400, nil,
			`{"error":{"code":"invalid_request","message":"m","details":null}}`,
			APIError{StatusCode: 400, Code: "invalid_request", Message: "m", Dialect: "altyaa"}},
		{"unknown JSON", 502, http.Header{"X-Request-Id": {"gw"}},
			`{"hello":"world"}`,
			APIError{StatusCode: 502, RequestID: "gw", Retryable: true}},
		{"HTML", 502, http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {"gw-2"}},
			`<html><body><h1>502 Bad Gateway</h1></body></html>`,
			APIError{StatusCode: 502, RequestID: "gw-2", Retryable: true}},
		{"JSON labeled HTML is not read", 400, http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			`{"error":{"code":"invalid_request","message":"m"}}`,
			APIError{StatusCode: 400}},
		{"text/plain JSON", 400, http.Header{"Content-Type": {"text/plain"}},
			`{"code":"conflict","message":"m"}`,
			APIError{StatusCode: 400, Code: "conflict", Message: "m", Dialect: "generic"}},
		{"vendor +json", 400, http.Header{"Content-Type": {"application/vnd.api+json"}},
			`{"errors":[{"code":"invalid_request","title":"t"}]}`,
			APIError{StatusCode: 400, Code: "invalid_request", Message: "t", Dialect: "generic"}},
		{"empty body", 503, nil, ``, APIError{StatusCode: 503, Retryable: true}},
		{"whitespace body", 404, nil, " \n\t ", APIError{StatusCode: 404}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := newResponse(rtStep{status: tc.status, header: tc.header, body: tc.body})
			body := readBodyAfter(t, resp, func() { checkAPIError(t, ParseError(resp), tc.want) })
			if body != tc.body {
				t.Errorf("body after ParseError = %q, want %q", body, tc.body)
			}
		})
	}
	if ParseError(nil) != nil || ParseError(newResponse(rtStep{status: 302, body: `{"code":"x"}`})) != nil {
		t.Error("ParseError of nil or a 302 is not nil")
	}
}

func TestClassPrecedence(t *testing.T) {
	html := http.Header{"Content-Type": {"text/html"}}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   Class
	}{
		{"503 retryable false", 503, nil, `{"error":{"code":"service_unavailable","message":"down","retryable":false}}`, Permanent},
		{"502 platform error not retryable", 502, nil, `{"error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"m","retryable":false}}`, Permanent},
		{"400 unknown code", 400, nil, `{"error":{"code":"weird_thing","message":"m"}}`, Permanent},
		{"HTML 502", 502, html, `<html><body>Bad Gateway</body></html>`, Transient},
		{"HTML 502 without Content-Type", 502, nil, `<html><body>Bad Gateway</body></html>`, Transient},
		{"400 retryable true", 400, nil, `{"error":{"code":"weird_thing","message":"m","retryable":true}}`, Transient},
		{"known permanent code, retryable true", 400, nil, `{"error":{"code":"invalid_request","message":"m","retryable":true}}`, Transient},
		{"top-level retryable", 409, nil, `{"code":"conflict","message":"m","retryable":true}`, Transient},
		{"429 retryable false", 429, nil, `{"error":{"code":"rate_limit_exceeded","retryable":false}}`, Permanent},
		{"429 unknown code", 429, nil, `{"error":{"code":"slow_down"}}`, Throttled},
		{"429 known permanent code", 429, nil, `{"error":{"code":"invalid_request"}}`, Throttled},
		{"429 retryable true stays throttled", 429, nil, `{"error":{"code":"x","retryable":true}}`, Throttled},
		{"500 known permanent code", 500, nil, `{"success":false,"error":{"code":"PUBLIC_API_POST_NOT_FOUND","message":"m"}}`, Permanent},
		{"501 transient code", 501, nil, `{"error":{"code":"service_unavailable"}}`, Transient},
		{"501", 501, nil, `{"error":{"code":"nope"}}`, Permanent},
		{"505", 505, html, `<p>no</p>`, Permanent},
		{"retryable not a boolean", 400, nil, `{"error":{"code":"x","retryable":"yes"}}`, Permanent},
		{"retryable null", 503, nil, `{"error":{"code":"x","retryable":null}}`, Transient},
		{"first retryable wins", 503, nil, `{"error":{"code":"x","retryable":false,"retryable":true}}`, Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: tc.status, header: tc.header, body: tc.body}, {status: 200}}}
			var attempts []Attempt
			resp, _ := roundTrip(t, New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) })),
				newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
			if attempts[0].Class != tc.want || s.numCalls() != map[bool]int{false: 1, true: 2}[tc.want.Retryable()] {
				t.Errorf("class %v after %d attempts, want %v", attempts[0].Class, s.numCalls(), tc.want)
			}
			if e := ParseError(newResponse(rtStep{status: tc.status, header: tc.header, body: tc.body})); e.Retryable != tc.want.Retryable() {
				t.Errorf("ParseError(…).Retryable = %v, want %v", e.Retryable, tc.want.Retryable())
			}
		})
	}
}

func TestWithCodes(t *testing.T) {
	tests := []struct {
		name  string
		codes map[string]Class
		resp  rtStep
		want  Class
	}{
		{"added", map[string]Class{"busy_try_again": Transient}, rtStep{status: 409, body: `{"error":{"code":"busy_try_again"}}`}, Transient},
		{"overridden", map[string]Class{"PUBLIC_API_POST_CREATE_FAILED": Permanent}, rtStep{status: 500, body: `{"success":false,"error":{"code":"PUBLIC_API_POST_CREATE_FAILED"}}`}, Permanent},
		{"overridden throttle code", map[string]Class{"RATE_LIMITED": Permanent}, rtStep{status: 403, body: `{"code":"RATE_LIMITED"}`}, Permanent},
		{"override of a throttle code applies to its spellings", map[string]Class{"throttled": Transient}, rtStep{status: 403, body: `{"code":"THROTTLED"}`}, Transient},
		{"matched exactly", map[string]Class{"busy": Transient}, rtStep{status: 409, body: `{"code":"BUSY"}`}, Permanent},
		{"others unchanged", map[string]Class{"busy": Transient}, rtStep{status: 503, body: `{"error":{"code":"not_found"}}`}, Permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{tc.resp, {status: 200}}}
			var attempts []Attempt
			resp, _ := roundTrip(t, New(s, WithBackoff(0, 0), WithCodes(tc.codes), WithObserver(func(a Attempt) { attempts = append(attempts, a) })),
				newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
			if attempts[0].Class != tc.want || attempts[0].Retry != tc.want.Retryable() {
				t.Errorf("class %v retry %v, want %v", attempts[0].Class, attempts[0].Retry, tc.want)
			}
		})
	}
	// WithCodes copies its map and later options add to earlier ones.
	m := map[string]Class{"a": Transient}
	opt := WithCodes(m)
	m["a"] = Permanent
	tr := New(&rtScript{steps: []rtStep{{}}}, opt, WithCodes(map[string]Class{"b": Throttled}))
	if cl, _ := tr.cls.codes.lookup("a"); cl != Transient {
		t.Errorf("code a = %v, want the Transient given to WithCodes", cl)
	}
	if cl, _ := tr.cls.codes.lookup("b"); cl != Throttled {
		t.Errorf("code b = %v, want Throttled", cl)
	}
}

func TestWithClassifier(t *testing.T) {
	type call struct {
		status int
		code   string
		err    error
		def    Class
	}
	var calls []call
	cls := func(resp *http.Response, e *APIError, err error, def Class) Class {
		c := call{err: err, def: def}
		if resp != nil {
			c.status = resp.StatusCode
		}
		if e != nil {
			c.code = e.Code
		}
		calls = append(calls, c)
		if resp != nil && resp.StatusCode == http.StatusConflict {
			return Transient
		}
		return def
	}
	s := &rtScript{steps: []rtStep{
		{status: 409, body: `{"error":{"code":"conflict"}}`},
		{err: errReset},
		{status: 503, body: `{"error":{"code":"service_unavailable"}}`},
		{status: 200},
	}}
	var attempts []Attempt
	resp, _ := roundTrip(t, New(s, WithBackoff(0, 0), WithClassifier(cls), WithObserver(func(a Attempt) { attempts = append(attempts, a) })),
		newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	resp.Body.Close()
	want := []call{
		{409, "conflict", nil, Permanent},
		{0, "", errReset, Transient},
		{503, "service_unavailable", nil, Transient},
		{200, "", nil, Success},
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("classifier calls = %v, want %v", calls, want)
	}
	if len(attempts) != 4 || attempts[0].Class != Transient || !attempts[0].Retry {
		t.Errorf("attempts = %+v; want the 409 retried as Transient", attempts)
	}

	// A nil Classifier restores the default.
	s = &rtScript{steps: []rtStep{{status: 409}, {status: 200}}}
	resp, _ = roundTrip(t, New(s, WithBackoff(0, 0), WithClassifier(cls), WithClassifier(nil)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	resp.Body.Close()
	if s.numCalls() != 1 {
		t.Errorf("WithClassifier(nil): %d attempts, want 1", s.numCalls())
	}

	// The method-safety rule applies to what a Classifier decides.
	s = &rtScript{steps: []rtStep{{status: 409}, {status: 200}}}
	req := newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x"))
	resp, _ = roundTrip(t, New(s, WithBackoff(0, 0), WithClassifier(cls), WithoutIdempotencyKeys()), req)
	resp.Body.Close()
	if s.numCalls() != 1 {
		t.Errorf("POST without a key classified Transient: %d attempts, want 1", s.numCalls())
	}

	// The APIError the caller can parse agrees with the Classifier.
	st := attemptState{}
	c := &classifier{codes: newCodeTable(nil), custom: cls, maxPeek: DefaultMaxPeek}
	c.classify(&st, nil, newResponse(rtStep{status: 409, body: `{"code":"conflict"}`}), nil, time.Now)
	if !st.apiErr.Retryable || st.class != Transient {
		t.Errorf("after the Classifier: class %v, APIError.Retryable %v", st.class, st.apiErr.Retryable)
	}
}

func TestClassifyErr(t *testing.T) {
	certErr := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	tests := []struct {
		name      string
		err       error
		class     Class
		neverSent bool
	}{
		{"refused", errRefused, Transient, true},
		{"refused, bare errno", syscall.ECONNREFUSED, Transient, true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}, Transient, true},
		{"dns", &url.Error{Op: "Get", URL: "http://x", Err: &net.DNSError{Err: "server misbehaving", Name: "x"}}, Transient, true},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, Transient, true},
		{"dns no such host", &url.Error{Op: "Get", URL: "http://x", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, Permanent, true},
		{"dns no such host, temporary", &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true, IsTemporary: true}, Transient, true},
		{"reset", errReset, Transient, false},
		{"EOF", io.EOF, Transient, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, Transient, false},
		{"deadline", context.DeadlineExceeded, Transient, false},
		{"attempt timeout", fmt.Errorf("%w after 1s: %w", ErrAttemptTimeout, context.Canceled), Transient, false},
		{"http2 refused stream", errors.New("http2: stream error: stream ID 3; REFUSED_STREAM"), Transient, true},
		{"http2 refused stream from peer", errors.New("stream error: stream ID 3; REFUSED_STREAM; received from peer"), Transient, true},
		{"http2 refused stream, not retried", errors.New("http2: Transport: cannot retry err [stream error: stream ID 3; REFUSED_STREAM] after Request.Body was written; define Request.GetBody to avoid this error"), Transient, true},
		{"http2 other stream error", errors.New("stream error: stream ID 3; INTERNAL_ERROR"), Transient, false},
		{"http2 GOAWAY code", errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=3, ErrCode=REFUSED_STREAM, debug=""`), Transient, false},
		{"http2 GOAWAY debug", errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=3, ErrCode=NO_ERROR, debug="stream error: stream ID 3; REFUSED_STREAM"`), Transient, false},
		// A stream above a GOAWAY's last stream ID was not processed.
		{"http2 GOAWAY below the stream", errors.New("http2: Transport received Server's graceful shutdown GOAWAY"), Transient, true},
		{"http2 GOAWAY below the stream, not retried", errors.New("http2: Transport: cannot retry err [http2: Transport received Server's graceful shutdown GOAWAY] after Request.Body was written; define Request.GetBody to avoid this error"), Transient, true},
		// Proof only when net/http sent the request on that one stream
		// (see goAwayFirstStream): it may end net/http's own resends.
		{"http2 GOAWAY below the first stream", errors.New("http2: Transport received GOAWAY from server ErrCode:ENHANCE_YOUR_CALM"), Transient, false},
		{"http2 GOAWAY debug reads as below the stream", errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=3, ErrCode=NO_ERROR, debug="http2: Transport received Server's graceful shutdown GOAWAY"`), Transient, false},
		// A server's words, which net/http quotes, are not net/http's:
		// they prove nothing unsent. (A Content-Length net/http refuses
		// is the server's framing, sent again to a retry: Permanent.)
		{"http2 refused stream in a header's value", errors.New(`net/http: HTTP/1.x transport connection broken: bad Content-Length "stream error: stream ID 1; REFUSED_STREAM"`), Permanent, false},
		{"http2 refused stream in a status line", errors.New(`malformed HTTP status code "stream error: stream ID 1; REFUSED_STREAM"`), Permanent, false},
		{"http2 refused stream in the URL", &url.Error{Op: "Post", URL: "http://x/stream error: stream ID 1; REFUSED_STREAM", Err: io.ErrUnexpectedEOF}, Transient, false},
		{"unsupported scheme in a header's value", errors.New(`net/http: HTTP/1.x transport connection broken: bad Content-Length "unsupported protocol scheme \"x\""`), Permanent, false},
		{"framing in a header's value", errors.New(`net/http: HTTP/1.x transport connection broken: malformed MIME header: missing colon: "bad Content-Length"`), Permanent, false},
		{"header line without colon", errors.New(`net/http: HTTP/1.x transport connection broken: malformed MIME header: missing colon: "bad header"`), Permanent, false},
		// Framing net/http refuses, and 1xx floods: the server's, again.
		{"two Content-Lengths", errors.New(`net/http: HTTP/1.x transport connection broken: http: message cannot contain multiple Content-Length headers; got ["1" "2"]`), Permanent, false},
		{"unknown Transfer-Encoding", errors.New(`net/http: HTTP/1.x transport connection broken: unsupported transfer encoding: "gzip"`), Permanent, false},
		{"Transfer-Encodings", errors.New(`net/http: HTTP/1.x transport connection broken: too many transfer encodings: ["chunked" "chunked"]`), Permanent, false},
		{"1xx flood", errors.New("net/http: HTTP/1.x transport connection broken: net/http: server response headers exceeded 4096 bytes; aborted"), Permanent, false},
		{"1xx flood, http2", errors.New("stream error: stream ID 1; PROTOCOL_ERROR; header list too large"), Permanent, false},
		{"1xx flood, before Go 1.24", errors.New("net/http: too many 1xx informational responses"), Permanent, false},
		{"invalid URL in the URL", &url.Error{Op: "Get", URL: "http://x/invalid URL", Err: io.EOF}, Transient, false},
		{"circuit open", fmt.Errorf("%w: api.test", ErrCircuitOpen), Permanent, true},
		{"rate limited", fmt.Errorf("%w: api.test", ErrRateLimited), Permanent, true},
		{"cert", certErr, Permanent, true},
		{"cert unknown authority", x509.UnknownAuthorityError{}, Permanent, true},
		{"cert hostname", &url.Error{Op: "Get", URL: "https://x", Err: x509.HostnameError{Host: "x"}}, Permanent, true},
		{"cert invalid", x509.CertificateInvalidError{Reason: x509.Expired}, Permanent, true},
		{"unsupported scheme", errors.New(`unsupported protocol scheme "ftp"`), Permanent, true},
		{"invalid header", errors.New(`net/http: invalid header field name "a b"`), Permanent, true},
		{"http2 invalid response header", errors.New(`stream error: stream ID 1; PROTOCOL_ERROR; invalid header field value for "x-bad"`), Permanent, false},
		{"http2 invalid response header name", errors.New(`stream error: stream ID 1; PROTOCOL_ERROR; invalid header field name "x\x01"`), Permanent, false},
		{"http2 missing status", errors.New(`stream error: stream ID 3; PROTOCOL_ERROR; malformed response from server: missing status pseudo header`), Permanent, false},
		// A reset by the server, a connection's error (every stream of
		// it fails), a server's words in a GOAWAY's debug data: retried.
		{"http2 reset PROTOCOL_ERROR", errors.New(`stream error: stream ID 1; PROTOCOL_ERROR; received from peer`), Transient, false},
		{"http2 connection COMPRESSION_ERROR", errors.New(`connection error: COMPRESSION_ERROR`), Transient, false},
		{"http2 header words in debug data", errors.New(`http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug="stream error: stream ID 1; PROTOCOL_ERROR; invalid header field name "`), Transient, false},
		{"not TLS", &url.Error{Op: "Get", URL: "https://x", Err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", Conn: &net.TCPConn{}}}, Permanent, true},
		// Past the handshake (crypto/tls leaves Conn nil then), a record
		// it rejects may follow the request written.
		{"bad TLS record past the handshake", &url.Error{Op: "Post", URL: "https://x", Err: tls.RecordHeaderError{Msg: "oversized record received with length 20000"}}, Permanent, false},
		{"HTTP answer to HTTPS", errors.New("http: server gave HTTP response to HTTPS client"), Permanent, true},
		{"TLS alert: certificate required", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, Permanent, false},
		{"proxy refused", &url.Error{Op: "Get", URL: "https://x", Err: errors.New("Proxy Authentication Required")}, Permanent, true},
		{"proxy unavailable", errors.New("Service Unavailable"), Transient, false},
		// A proxy's 408 and 429 refuse no tunnel: a retry may be let through.
		{"proxy timeout", errors.New("Request Timeout"), Transient, false},
		{"proxy rate limited", errors.New("Too Many Requests"), Transient, false},
		{"TLS alert: internal error", &net.OpError{Op: "remote error", Err: errors.New("tls: internal error")}, Transient, false},
		{"TLS alert: bad record MAC", &net.OpError{Op: "remote error", Err: errors.New("tls: bad record MAC")}, Transient, false},
	}
	for _, tc := range tests {
		if cl, ns := classifyErr(tc.err); cl != tc.class || ns != tc.neverSent {
			t.Errorf("classifyErr(%s) = %v, %v; want %v, %v", tc.name, cl, ns, tc.class, tc.neverSent)
		}
	}
}

// TestServerWordsProveNothing: a server that processes a POST, then
// answers with a header net/http refuses, whose value reads like
// net/http's error for an HTTP/2 stream refused unprocessed, gets the POST
// once, as from a plain client: net/http quotes the value in its error,
// and what a server says proves nothing. (The host is not known to honor
// keys: a write is resent only when provably unprocessed.)
func TestServerWordsProveNothing(t *testing.T) {
	for _, header := range []string{
		"Content-Length: stream error: stream ID 1; REFUSED_STREAM",
		"Content-Length: unsupported protocol scheme",
		"Transfer-Encoding: no Host in request URL",
	} {
		addr, posts, stop := rawServer(t, func(int32) string { return "HTTP/1.1 200 OK\r\n" + header + "\r\n\r\n" }) // each POST processed
		var attempts []Attempt
		base := &http.Transport{}
		tr := New(base, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://"+addr+"/v1/payments", strings.NewReader(`{"amount":100}`)))
		base.CloseIdleConnections()
		stop()
		if n := posts.Load(); n != 1 || len(attempts) != 1 {
			t.Errorf("%s: the server processed the POST %d times in %d attempts (error %v); want once", header, n, len(attempts), err)
		}
	}
}

func TestUnquoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no quotes", "no quotes"},
		{`bad Content-Length "x"`, "bad Content-Length "},
		{`a "b" c "d" e`, "a  c  e"},
		{`a "b\"c" d`, "a  d"},
		{`a "b\\" c "d"`, "a  c "},
		{`a "unterminated`, "a "},
		{`a "ends in a backslash\`, "a "},
		{`Post "http://x/?q=\"": EOF`, "Post : EOF"},
	} {
		if got := unquoted(tc.in); got != tc.want {
			t.Errorf("unquoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClassifyRealNetworkErrors(t *testing.T) {
	observe := func(attempts *[]Attempt) Option {
		return WithObserver(func(a Attempt) { *attempts = append(*attempts, a) })
	}
	t.Run("TLS certificate", func(t *testing.T) {
		var hits int
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors
		srv.StartTLS()
		defer srv.Close()
		var attempts []Attempt
		client := loopbackClient(t, WithBackoff(0, 0), observe(&attempts))
		_, err := client.Get(srv.URL)
		var cv *tls.CertificateVerificationError
		if !errors.As(err, &cv) || len(attempts) != 1 || attempts[0].Class != Permanent || hits != 0 {
			t.Errorf("error %v after %d attempts (%+v); want one Permanent certificate error", err, len(attempts), attempts)
		}
	})
	t.Run("TLS handshake refused", func(t *testing.T) {
		// A server that requires a client certificate this client does
		// not have refuses every handshake: during it under TLS 1.2
		// (handshake failure), after the request was written under TLS
		// 1.3 (certificate required). A plain client fails at once.
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MaxVersion: version}
			srv.StartTLS()
			var attempts []Attempt
			tr := New(srv.Client().Transport, WithBackoff(0, 0), observe(&attempts))
			_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", srv.URL, nil))
			srv.Close()
			if len(attempts) != 1 || attempts[0].Class != Permanent || conns.Load() != 1 {
				t.Errorf("TLS %x: error %v after %d attempts and %d connections; want one Permanent attempt", version, err, len(attempts), conns.Load())
			}
		}
	})
	t.Run("proxy refuses the tunnel", func(t *testing.T) {
		// A proxy that wants credentials the environment lacks (407),
		// or that refuses the host (403), refuses every CONNECT to an
		// https host; an http request gets the same answer as its
		// response, returned at once. So does a proxy that does not
		// tunnel (405, 501), or refuses the target (400, 404): a plain
		// client fails at once. (A proxy's 502, 503 or 504 says that
		// the host is unreachable now: retried.)
		for _, status := range []int{http.StatusProxyAuthRequired, http.StatusForbidden,
			http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
			var hits atomic.Int32
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.WriteHeader(status)
			}))
			proxyURL, _ := url.Parse(proxy.URL)
			var attempts []Attempt
			tr := New(&http.Transport{Proxy: http.ProxyURL(proxyURL)}, WithBackoff(0, 0), observe(&attempts))
			_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://api.test/", nil))
			proxy.Close()
			if len(attempts) != 1 || attempts[0].Class != Permanent || hits.Load() != 1 {
				t.Errorf("proxy %d: error %v after %d attempts and %d CONNECTs; want one Permanent attempt", status, err, len(attempts), hits.Load())
			}
		}
	})
	t.Run("proxy refuses the tunnel in its own words", func(t *testing.T) {
		// A proxy may follow the status's reason phrase with its own
		// explanation, as Microsoft's ISA Server and Forefront TMG do:
		// net/http's error is then that whole phrase. It refuses every
		// CONNECT all the same: one attempt, and the host's breaker,
		// which the request never reached, counts nothing.
		for _, status := range []string{
			"407 Proxy Authentication Required ( Forefront TMG requires authorization to fulfill the request. Access to the Web Proxy filter is denied.  )",
			"403 Forbidden ( The server denied the specified Uniform Resource Locator (URL). Contact the server administrator.  )",
		} {
			addr, conns := tcpServer(t, func(c net.Conn) {
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 0\r\n\r\n")
				c.Close()
			})
			proxyURL, _ := url.Parse("http://" + addr)
			var attempts []Attempt
			tr := New(&http.Transport{Proxy: http.ProxyURL(proxyURL)}, WithBackoff(0, 0),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), observe(&attempts))
			_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://api.test/", nil))
			if len(attempts) != 1 || attempts[0].Class != Permanent || conns.Load() != 1 {
				t.Errorf("proxy %.3s: error %v after %d attempts and %d CONNECTs; want one Permanent attempt", status, err, len(attempts), conns.Load())
			}
			if st := tr.BreakerState("https://api.test/"); st != BreakerClosed {
				t.Errorf("proxy %.3s: the host's breaker %v, want %v", status, st, BreakerClosed)
			}
		}
	})
	t.Run("SOCKS5 proxy refuses the client", func(t *testing.T) {
		// A SOCKS5 proxy that accepts none of the client's
		// authentication methods (it wants credentials the environment
		// lacks) refuses every connection.
		addr, conns := tcpServer(t, func(c net.Conn) {
			var greeting [3]byte // version 5, one method: none
			io.ReadFull(c, greeting[:])
			c.Write([]byte{5, 0xff}) // no acceptable methods
			c.Close()
		})
		proxyURL, _ := url.Parse("socks5://" + addr)
		var attempts []Attempt
		tr := New(&http.Transport{Proxy: http.ProxyURL(proxyURL)}, WithBackoff(0, 0), observe(&attempts))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if len(attempts) != 1 || attempts[0].Class != Permanent || conns.Load() != 1 {
			t.Errorf("error %v after %d attempts and %d connections; want one Permanent attempt", err, len(attempts), conns.Load())
		}
	})
	t.Run("HTTPS to an HTTP server", func(t *testing.T) {
		srv, _ := countConns(t, func(http.ResponseWriter, *http.Request) {})
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes it reads as requests
		var attempts []Attempt
		client := loopbackClient(t, WithBackoff(0, 0), observe(&attempts))
		_, err := client.Get(strings.Replace(srv.URL, "http:", "https:", 1))
		if err == nil || len(attempts) != 1 || attempts[0].Class != Permanent {
			t.Errorf("error %v after %d attempts; want one Permanent attempt: the scheme is wrong", err, len(attempts))
		}
	})
	t.Run("HTTP to a server that does not speak it", func(t *testing.T) {
		// An http URL for a TLS port (its alert), or for another
		// protocol's: the URL is wrong, as with HTTPS to an HTTP
		// server, and a plain client fails at once. The server answers
		// the request it read (a greeting sent before it, as an SSH
		// server's, races with the request net/http writes).
		for _, greeting := range []string{"\x15\x03\x01\x00\x02\x02\x50", "SSH-2.0-OpenSSH_9.6\r\n", "-ERR unknown command\r\n"} {
			addr, conns := tcpServer(t, func(c net.Conn) {
				http.ReadRequest(bufio.NewReader(c))
				c.Write([]byte(greeting))
				c.Close()
			})
			var attempts []Attempt
			tr := New(&http.Transport{}, WithBackoff(0, 0), observe(&attempts))
			_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://"+addr+"/", nil))
			if len(attempts) != 1 || attempts[0].Class != Permanent || conns.Load() != 1 {
				t.Errorf("greeting %q: error %v after %d attempts and %d connections; want one Permanent attempt", greeting, err, len(attempts), conns.Load())
			}
		}
	})
	t.Run("response headers over the client's limit", func(t *testing.T) {
		// net/http aborts a response whose headers pass its
		// MaxResponseHeaderBytes: the same server sends the same headers
		// again, and a plain client fails at once.
		srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Padding", strings.Repeat("p", 8<<10))
		})
		var attempts []Attempt
		tr := New(&http.Transport{MaxResponseHeaderBytes: 4 << 10}, WithBackoff(0, 0), observe(&attempts))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", srv.URL, nil))
		if err == nil || len(attempts) != 1 || attempts[0].Class != Permanent || conns.Load() != 1 {
			t.Errorf("error %v after %d attempts and %d connections; want one Permanent attempt", err, len(attempts), conns.Load())
		}
	})
	t.Run("unsupported scheme", func(t *testing.T) {
		var attempts []Attempt
		tr := New(&http.Transport{}, WithBackoff(0, 0), observe(&attempts))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "ftp://api.test/file", nil))
		var e *Error
		if !errors.As(err, &e) || e.Attempts != 1 || attempts[0].Class != Permanent {
			t.Errorf("error %v; want one Permanent attempt", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		addr := refusedAddr(t)
		var attempts []Attempt
		// A write without a key is retried: the refused dial proves it never left.
		tr := New(&http.Transport{}, WithBackoff(0, 0), WithMaxRetries(1), WithoutIdempotencyKeys(), observe(&attempts))
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://"+addr+"/", strings.NewReader("x")))
		if !errors.Is(err, syscall.ECONNREFUSED) || len(attempts) != 2 || attempts[0].Class != Transient || !attempts[0].Retry {
			t.Errorf("error %v, attempts %+v; want a retried Transient refusal", err, attempts)
		}
	})
}

// TestListItemRetryableIsNotTheAnswers: the retryable flag of an item of
// an envelope's "errors" is not the answer's when the envelope has a code
// of its own: Postato's 422 VALIDATION_FAILED ("not retryable as-is")
// lists the platforms' errors, each with its own retryable flag.
func TestListItemRetryableIsNotTheAnswers(t *testing.T) {
	body := `{"error":"VALIDATION_FAILED","message":"Post failed platform rules","errors":[{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"file exceeds 100 MB","retryable":true}]}`
	s := &rtScript{steps: []rtStep{{status: 422, body: body}}}
	var attempts []Attempt
	tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/posts/1", nil))
	resp.Body.Close()
	if s.numCalls() != 1 || attempts[0].Class != Permanent {
		t.Errorf("%d attempts, class %v; want one Permanent attempt", s.numCalls(), attempts[0].Class)
	}
	resp = &http.Response{StatusCode: 422, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
	if e := ParseError(resp); e.Retryable || e.Code != "VALIDATION_FAILED" {
		t.Errorf("ParseError = %+v; want VALIDATION_FAILED, not retryable", e)
	}
}

// TestListItemRetryableIsNotTheAnswersUnderACode: the same when the
// envelope's own code is a top-level "code" ({"code":…,"message":…,
// "errors":[…]}): the answer is VALIDATION_FAILED, not retried; its first
// item's code and retryable flag are a platform's. The first item was
// read as the answer's: the 422 was retried 5 times, and with an item
// coded rate_limited, Throttled.
func TestListItemRetryableIsNotTheAnswersUnderACode(t *testing.T) {
	for _, body := range []string{
		`{"code":"VALIDATION_FAILED","message":"Post failed platform rules","errors":[{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"file exceeds 100 MB","retryable":true}]}`,
		`{"code":"VALIDATION_FAILED","message":"Post failed platform rules","errors":[{"field":"media","code":"rate_limited","message":"the platform is busy"}]}`,
	} {
		s := &rtScript{steps: []rtStep{{status: 422, body: body}}}
		var attempts []Attempt
		tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/posts/1", nil))
		resp.Body.Close()
		if s.numCalls() != 1 || attempts[0].Class != Permanent || attempts[0].Code != "VALIDATION_FAILED" {
			t.Errorf("%d attempts, class %v, code %q; want one Permanent attempt, VALIDATION_FAILED", s.numCalls(), attempts[0].Class, attempts[0].Code)
		}
		resp = &http.Response{StatusCode: 422, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
		if e := ParseError(resp); e.Retryable || e.Code != "VALIDATION_FAILED" || e.Message != "Post failed platform rules" {
			t.Errorf("ParseError = %+v; want VALIDATION_FAILED and its message, not retryable", e)
		}
	}
}

// TestListItemNamesTheErrorBesideTheStatusAsText: a code beside "errors"
// that repeats the status is none, a number (422) or a string of its
// digits ("422", as Azure spells its codes): the first item names the
// error either way. (The string was taken for a code of the document's own,
// then dropped for repeating the status: the answer had no code, where
// the number's had the item's.)
func TestListItemNamesTheErrorBesideTheStatusAsText(t *testing.T) {
	for _, code := range []string{`422`, `"422"`} {
		body := `{"code":` + code + `,"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}]}`
		resp := &http.Response{StatusCode: 422, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
		if e := ParseError(resp); e.Code != "missing_field" {
			t.Errorf("ParseError(%s).Code = %q, want missing_field", body, e.Code)
		}
	}
}

func TestPeekIsBounded(t *testing.T) {
	envelope := `{"error":{"code":"invalid_request","message":"too big","details":{"pad":"`
	big := envelope + strings.Repeat("x", 10<<20) + `"}}}`
	t.Run("10 MB error body returned intact", func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 400, rc: func() io.ReadCloser { return io.NopCloser(strings.NewReader(big)) }}}}
		var attempts []Attempt
		resp, _ := roundTrip(t, New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) })),
			newRequest(t, context.Background(), "GET", "http://api.test/", nil))
		if n, _, _ := s.body(0).stats(); n > DefaultMaxPeek {
			t.Errorf("RoundTrip read %d bytes of the body, want at most %d", n, DefaultMaxPeek)
		}
		// The envelope is cut by the peek: the status decides.
		if attempts[0].Class != Permanent {
			t.Errorf("class = %v", attempts[0].Class)
		}
		if got := readBody(t, resp); got != big {
			t.Errorf("body: %d bytes, want the original %d bytes", len(got), len(big))
		}
	})
	t.Run("ParseError on 10 MB", func(t *testing.T) {
		resp := newResponse(rtStep{status: 503, header: http.Header{"Content-Type": {"application/json"}}, rc: func() io.ReadCloser { return io.NopCloser(strings.NewReader(big)) }})
		tb := resp.Body.(*trackedBody)
		e := ParseError(resp)
		if n, _, _ := tb.stats(); n > DefaultMaxPeek || e == nil || !e.Retryable {
			t.Errorf("ParseError read %d bytes, returned %+v", n, e)
		}
		if got := readBody(t, resp); got != big {
			t.Errorf("body: %d bytes, want the original %d bytes", len(got), len(big))
		}
	})
	t.Run("ParseError within maxReadWait", func(t *testing.T) {
		// A body that drips a byte every 500ms, and one that stalls,
		// as the Transport's peek is: ParseError waits for neither past
		// maxReadWait, whatever the caller's context allows.
		for _, kind := range []string{"dripping", "stalled"} {
			t.Run(kind, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
					defer cancel()
					var body io.ReadCloser = newDrippingBody(ctx)
					if kind == "stalled" {
						body = newStallBody(ctx, `{"error":{"code":"invalid_request"`)
					}
					resp := &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, ContentLength: -1}
					start := time.Now()
					ParseError(resp)
					if d := time.Since(start); d > maxReadWait {
						t.Errorf("ParseError of a %s body returned after %v, want at most %v", kind, d, maxReadWait)
					}
					resp.Body.Close()
				})
			})
		}
	})
	t.Run("100 MB never read whole", func(t *testing.T) {
		for _, status := range []int{400, 503} {
			g := &genReader{n: 100 << 20}
			s := &rtScript{steps: []rtStep{{status: status, header: http.Header{"Content-Type": {"application/json"}}, rc: func() io.ReadCloser { return io.NopCloser(g) }}, {status: 200}}}
			resp, _ := roundTrip(t, New(s, WithBackoff(0, 0)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			resp.Body.Close()
			want := int64(DefaultMaxPeek)
			if status == 503 {
				want = maxDrain + 1 // retried past: drained, and a byte past the drain tells a longer body
			}
			if g.off > want {
				t.Errorf("%d: read %d bytes of a 100 MB body, want at most %d", status, g.off, want)
			}
		}
	})
	t.Run("WithMaxPeek", func(t *testing.T) {
		for _, peek := range []int64{0, 10, 1 << 20} {
			s := &rtScript{steps: []rtStep{{status: 403, header: http.Header{"Content-Type": {"application/json"}}, rc: func() io.ReadCloser {
				return io.NopCloser(strings.NewReader(`{"error":{"code":"rate_limit_exceeded"}}`))
			}}}}
			var attempts []Attempt
			resp, _ := roundTrip(t, New(s, WithMaxPeek(peek), WithMaxRetries(0), WithObserver(func(a Attempt) { attempts = append(attempts, a) })),
				newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			read, _, _ := s.body(0).stats()
			body := readBody(t, resp)
			if read > peek || body != `{"error":{"code":"rate_limit_exceeded"}}` {
				t.Errorf("WithMaxPeek(%d): read %d bytes before returning; body %q", peek, read, body)
			}
			wantCode, wantClass := "", Permanent
			if peek == 1<<20 {
				wantCode, wantClass = "rate_limit_exceeded", Throttled
			}
			if attempts[0].Code != wantCode || attempts[0].Class != wantClass {
				t.Errorf("WithMaxPeek(%d): code %q class %v, want %q %v", peek, attempts[0].Code, attempts[0].Class, wantCode, wantClass)
			}
		}
	})
	t.Run("success bodies untouched", func(t *testing.T) {
		for _, status := range []int{200, 201, 204, 302} {
			s := &rtScript{steps: []rtStep{{status: status, body: `{"data":{}}`, header: http.Header{"X-Request-Id": {"r"}}}}}
			resp, _ := roundTrip(t, New(s, WithObserver(func(Attempt) {}), WithAttemptTimeout(time.Minute)),
				newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if _, reads, _ := s.body(0).stats(); reads != 0 {
				t.Errorf("%d: RoundTrip read the body %d times, want 0", status, reads)
			}
			resp.Body.Close()
		}
	})
}

func TestMalformedBodies(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	deepArr := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	tests := []struct {
		name   string
		status int
		body   string
		code   string // "" for the status fallback
	}{
		{"plain text", 503, "Service Unavailable", ""},
		{"HTML", 502, "<!doctype html><title>502</title>", ""},
		{"truncated", 503, `{"error":{"code":"invalid_request","mess`, ""},
		{"truncated string", 400, `{"error":"INVALID_`, ""},
		{"unterminated escape", 400, `{"code":"a\`, ""},
		{"bad escape", 400, `{"code":"a\q","message":"m"}`, ""},
		{"bad unicode escape", 400, `{"code":"a\u12","message":"m"}`, ""},
		{"lone surrogate", 400, `{"code":"a\ud800","message":"m"}`, "a\uFFFD"},
		{"control character", 400, "{\"code\":\"a\x01\"}", ""},
		{"10,000 levels", 503, deep, ""},
		{"10,000 levels in details", 400, `{"error":{"code":"invalid_request","details":` + deep + `}}`, ""},
		{"10,000 arrays", 503, deepArr, ""},
		{"10,000 arrays in a field", 503, `{"x":` + deepArr + `}`, ""},
		{"huge number", 400, `{"code":1e999999999,"message":"m"}`, "1e999999999"},
		{"long number", 503, `{"code":` + strings.Repeat("9", 50000) + `}`, strings.Repeat("9", 50000)},
		{"number in an error string field", 400, `{"error":12,"code":"conflict"}`, "conflict"},
		{"array at the top", 400, `[{"code":"conflict"}]`, ""},
		{"trailing comma", 400, `{"code":"conflict",}`, ""},
		{"missing colon", 400, `{"code" "conflict"}`, ""},
		{"garbage after the object", 400, `{"code":"conflict"} trailing`, ""},
		{"a second object", 400, `{"code":"conflict"}{"code":"conflict"}`, ""},
		{"double minus", 400, `{"code":--1,"message":"m"}`, ""},
		{"leading zero", 400, `{"code":012,"message":"m"}`, ""},
		{"NUL bytes", 400, "\x00\x00\x00", ""},
		{"invalid UTF-8", 400, "{\"code\":\"\xff\xfe\"}", "\uFFFD\uFFFD"}, // as encoding/json decodes it
		{"BOM", 400, "\ufeff{\"code\":\"conflict\"}", "conflict"},         // RFC 8259 lets a parser ignore it
		{"BOM inside", 400, " \ufeff{\"code\":\"conflict\"}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := newResponse(rtStep{status: tc.status, header: http.Header{"Content-Type": {"application/json"}}, body: tc.body})
			var e *APIError
			body := readBodyAfter(t, resp, func() { e = ParseError(resp) })
			if body != tc.body {
				t.Error("body changed by ParseError")
			}
			if e.Code != tc.code || e.StatusCode != tc.status {
				t.Errorf("ParseError = %+v, want code %.20q", e, tc.code)
			}
			wantRetry := statusClass(tc.status).Retryable()
			if tc.code != "" {
				wantRetry = decide(tc.status, nil, &envelope{code: tc.code, retryable: -1}, true, defaultCodeClass).Retryable()
			}
			if e.Retryable != wantRetry {
				t.Errorf("Retryable = %v, want %v", e.Retryable, wantRetry)
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	tests := []struct {
		e    APIError
		want string
	}{
		{APIError{StatusCode: 429, Code: "PUBLIC_API_RATE_LIMITED", Message: "Rate limit exceeded", RequestID: "7f3a9c1e"},
			"429 PUBLIC_API_RATE_LIMITED: Rate limit exceeded (request_id 7f3a9c1e)"},
		{APIError{StatusCode: 400, Code: "invalid_request", Message: "bad", Details: json.RawMessage(`{"field":"secret-value"}`)},
			"400 invalid_request: bad"},
		{APIError{StatusCode: 502}, "502 Bad Gateway"},
		{APIError{StatusCode: 503, RequestID: "r"}, "503 Service Unavailable (request_id r)"},
		{APIError{StatusCode: 599, Message: "odd"}, "599: odd"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	var err error = ParseError(newResponse(rtStep{status: 400, body: `{"error":"INVALID_REQUEST","message":"Body failed validation","details":{"content":["my secret caption"]}}`}))
	if strings.Contains(err.Error(), "secret") || !strings.HasPrefix(err.Error(), "400 INVALID_REQUEST: Body failed validation") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestClassString(t *testing.T) {
	for cl, want := range map[Class]string{Success: "success", Transient: "transient", Throttled: "throttled", Permanent: "permanent", Class(9): "class(9)"} {
		if got := cl.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(cl), got, want)
		}
	}
	for _, cl := range []Class{Success, Permanent, Class(9)} {
		if cl.Retryable() {
			t.Errorf("%v is retryable", cl)
		}
	}
	for _, cl := range []Class{Transient, Throttled} {
		if !cl.Retryable() {
			t.Errorf("%v is not retryable", cl)
		}
	}
}

func TestDefaultCodesAreCopies(t *testing.T) {
	for name, f := range map[string]func() map[string]Class{"DefaultCodes": DefaultCodes, "AidellyCodes": AidellyCodes, "AltyaaCodes": AltyaaCodes, "PostatoCodes": PostatoCodes} {
		m := f()
		if len(m) == 0 {
			t.Fatalf("%s is empty", name)
		}
		for k := range m {
			m[k] = Success
		}
		for k, v := range f() {
			if v == Success {
				t.Errorf("%s: writing to a returned map changed code %s", name, k)
			}
		}
	}
	d := DefaultCodes()
	for _, r := range codeRows {
		if r.dialect == "code-message" {
			continue
		}
		if d[r.code] != r.class {
			t.Errorf("DefaultCodes()[%s] = %v, want %v", r.code, d[r.code], r.class)
		}
	}
}

// TestMalformedRequestHeaderNotRetried: a request net/http refuses to send
// fails at once with its cause, after one attempt, through a real transport.
func TestMalformedRequestHeaderNotRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	base := srv.Client().Transport
	defer base.(*http.Transport).CloseIdleConnections()
	attempts := 0
	tr := New(base, WithObserver(func(Attempt) { attempts++ }))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
	req.Header["Bad Header"] = []string{"x"}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a request with an invalid header name was sent")
	}
	var e *Error
	if !errors.As(err, &e) || e.Attempts != 1 || attempts != 1 || !strings.Contains(err.Error(), "invalid header field name") {
		t.Errorf("err = %v after %d attempts, want one attempt and the cause", err, attempts)
	}
}

// TestThrottleCodePrefixIsNotOne: a code that only begins as one of the
// common throttling codes (throttle, RATE_LIMIT) is not one, for a
// Transport as for ParseError: it is unknown, and its status decides.
func TestThrottleCodePrefixIsNotOne(t *testing.T) {
	table := newCodeTable(nil)
	for _, code := range []string{"throttle", "RATE_LIMIT", "rate-limit", "quota", "too_many"} {
		if cl, ok := table.lookup(code); ok {
			t.Errorf("a Transport's lookup(%q) = %v, true; want unknown", code, cl)
		}
		if cl, ok := defaultCodeClass(code); ok {
			t.Errorf("defaultCodeClass(%q) = %v, true; want unknown", code, cl)
		}
	}
}

// TestServerFramingNotRetried: a server whose answer net/http refuses for
// its framing (a Content-Length that is not a number, two that differ, a
// Transfer-Encoding it does not speak) or for a flood of informational
// (1xx) responses, over HTTP/1 or HTTP/2, sends the same answer to a
// retry. A plain client fails once; the Transport retried each such GET 5
// times (all but the HTTP/1 flood, whose error read as headers too large),
// multiplying the load on a server already misbehaving. Each GET now
// reaches the server once.
func TestServerFramingNotRetried(t *testing.T) {
	flood := strings.Repeat("HTTP/1.1 102 Processing\r\nX-Wait: "+strings.Repeat("w", 100)+"\r\n\r\n", 100)
	for name, answer := range map[string]string{
		"bad Content-Length":        "HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\n",
		"two Content-Lengths":       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"unknown Transfer-Encoding": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"header line without colon": "HTTP/1.1 200 OK\r\nbad header\r\nContent-Length: 0\r\n\r\n",
		"NUL in a header value":     "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
		"empty header name":         "HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n",
		"1xx flood":                 flood + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	} {
		n, err := getRaw(t, &http.Transport{MaxResponseHeaderBytes: 4096}, func(int32) string { return answer })
		want := int32(1)
		if name == "header line without colon" {
			want = 2 // a connection cut in a header's name reads the same (see cutHeaders)
		}
		if n != want || err == nil {
			t.Errorf("HTTP/1 %s: the server got the GET %d times (error %v); want %d", name, n, err, want)
		}
	}

	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// The header is set once, before the first 1xx, and never changed
		// after it: net/http's HTTP/2 server encodes a 1xx's header map
		// on another goroutine without a copy, so that a change between
		// two 1xx (or before the final status) races with that encoding.
		w.Header().Set("X-Wait", strings.Repeat("w", 100))
		for range 100 {
			w.WriteHeader(http.StatusProcessing)
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	base.MaxResponseHeaderBytes = 4096
	defer base.CloseIdleConnections()
	_, err := roundTrip(t, New(base, WithBackoff(0, 0)), newRequest(t, context.Background(), "GET", srv.URL+"/v1/items", nil))
	if n := hits.Load(); n != 1 || err == nil {
		t.Errorf("HTTP/2 1xx flood: the server got the GET %d times (error %v); want once", n, err)
	}
}
