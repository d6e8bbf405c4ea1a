package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// Many APIs put a word beside their stable code that is not one: the
// status's reason phrase in "error" (Fastify's, NestJS's and Hapi's
// {"statusCode":…,"error":"Bad Request","code":…}), or the document's
// kind in "type" (Box's {"type":"error","status":…,"code":…}). The code
// is the one in "code": ParseError's Code, the Attempt's, and the key of
// the code tables.

// TestErrorPhraseBesideItsCode: ParseError reads the code beside the
// phrase, and a code that is kept stays kept (OAuth 2.0's error string,
// a problem's type URI).
func TestErrorPhraseBesideItsCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		ct     string
		body   string
		code   string
	}{
		{"Fastify", 400, "application/json; charset=utf-8",
			`{"statusCode":400,"code":"FST_ERR_VALIDATION","error":"Bad Request","message":"body must have required property 'content'"}`, "FST_ERR_VALIDATION"},
		{"reason phrase, then the code", 503, "application/json",
			`{"error":"Service Unavailable","code":"UPSTREAM_DOWN","message":"m"}`, "UPSTREAM_DOWN"},
		{"Box", 404, "application/json",
			`{"type":"error","status":404,"code":"not_found","help_url":"https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/","message":"Not Found","request_id":"abcdef123456"}`, "not_found"},
		// Kept as before.
		{"a phrase alone", 400, "application/json", `{"timestamp":"2026-12-03T10:00:00Z","status":400,"error":"Bad Request","path":"/v1/posts"}`, "Bad Request"},
		{"an error string that is a code", 400, "application/json", `{"error":"invalid_grant","error_description":"d","code":"x"}`, "invalid_grant"},
		{"a phrase beside a number", 429, "application/json", `{"statusCode":429,"code":429,"error":"Too Many Requests"}`, "Too Many Requests"},
		{"a problem's type URI", 403, "application/json", `{"type":"https://x.test/probs/out-of-credit","title":"t","status":403,"code":"E1"}`, "out-of-credit"},
		{"a declared problem's type", 403, "application/problem+json", `{"type":"out-of-credit","title":"t","status":403,"code":"E1"}`, "out-of-credit"},
		{"a bare type alone", 404, "application/json", `{"type":"error","status":404,"message":"m"}`, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ct}}, Body: io.NopCloser(strings.NewReader(tc.body))}
			e := ParseError(resp)
			if e.Code != tc.code {
				t.Errorf("ParseError(%d %s).Code = %q, want %q", tc.status, tc.body, e.Code, tc.code)
			}
			if got := readBody(t, resp); got != tc.body {
				t.Errorf("body after ParseError = %q, want the original", got)
			}
		})
	}
}

// TestErrorPhraseBesideAThrottleCode: a 403 whose only word of a rate limit
// is its code (a common throttling code, which the tables make Throttled
// on any status) is retried when that code sits beside a reason phrase or
// a bare type, as it is in any other shape.
func TestErrorPhraseBesideAThrottleCode(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"code and message", `{"code":"rate_limited","message":"Too many requests"}`}, // the shape read already
		{"reason phrase", `{"statusCode":403,"error":"Forbidden","code":"rate_limited","message":"Too many requests"}`},
		{"bare type", `{"type":"error","status":403,"code":"rate_limited","message":"Too many requests"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 403, body: tc.body}, {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "https://api.test/v1/posts", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if a := attempts[0]; a.Class != Throttled || a.Code != "rate_limited" || s.numCalls() != 2 {
					t.Errorf("403 %s: class %v, code %q after %d attempts; want throttled, rate_limited, 2", tc.body, a.Class, a.Code, s.numCalls())
				}
			})
		})
	}
}
