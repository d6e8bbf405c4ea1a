package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestDefaultCodesListsIssueSpellings: DefaultCodes lists every code issue
// 3 names, under the spelling the issue gives it, with its class: a caller
// who reads a class from it, or overrides one with WithCodes under that
// spelling, finds the code there (quota-exceeded was listed as
// quota_exceeded, so DefaultCodes()["quota-exceeded"] read Success).
func TestDefaultCodesListsIssueSpellings(t *testing.T) {
	codes := resilient.DefaultCodes()
	for code, want := range map[string]resilient.Class{
		"rate_limited":            resilient.Throttled,
		"rate_limit_exceeded":     resilient.Throttled,
		"too_many_requests":       resilient.Throttled,
		"throttled":               resilient.Throttled,
		"quota-exceeded":          resilient.Throttled,
		"PUBLIC_API_RATE_LIMITED": resilient.Throttled,
		"service_unavailable":     resilient.Transient,
		"VALIDATION_FAILED":       resilient.Permanent,
	} {
		if got, ok := codes[code]; !ok || got != want {
			t.Errorf("DefaultCodes()[%q] = %v, %v; want %v, true", code, got, ok, want)
		}
	}
}

// TestWithCodesOverridesCommonThrottleCode: a common throttling code
// overridden with WithCodes under the spelling DefaultCodes lists takes
// the new class in every spelling the Transport matches (case, '-' or
// '_'), as the codes listed under that spelling do by default.
func TestWithCodesOverridesCommonThrottleCode(t *testing.T) {
	for _, code := range []string{"quota-exceeded", "quota_exceeded", "QUOTA-EXCEEDED"} {
		base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: `{"code":"` + code + `","message":"m"}`}, {status: 200}}}
		for _, tc := range []struct {
			opts     []resilient.Option
			attempts int
		}{
			{nil, 2}, // Throttled by default: retried
			{[]resilient.Option{resilient.WithCodes(map[string]resilient.Class{"quota-exceeded": resilient.Permanent})}, 1},
		} {
			base.at, base.bodies, base.header = nil, nil, nil
			tr := resilient.New(base, append([]resilient.Option{resilient.WithBackoff(0, 0)}, tc.opts...)...)
			status, _, err := call(t, tr, context.Background(), http.MethodGet, "http://api.test/v1/posts", nil)
			if at, _, _ := base.sent(); len(at) != tc.attempts || err != nil {
				t.Errorf("code %q, %d options: %d, %v after %d attempts; want %d attempts", code, len(tc.opts), status, err, len(at), tc.attempts)
			}
		}
	}
}

// TestProblemTypeWithQuery: an RFC 9457 problem's Code is the last path
// segment of its type (issue 3): a query on the type URI is not part of
// it. The code read "out-of-credit?lang=en", and a known code with a
// query ("…/rate_limited?docs=1" on a 403) missed the code table and was
// not retried.
func TestProblemTypeWithQuery(t *testing.T) {
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	for typ, want := range map[string]string{
		"https://example.com/probs/out-of-credit?lang=en":   "out-of-credit",
		"https://example.com/probs/out-of-credit/?lang=en":  "out-of-credit",
		"https://example.com/probs?v=2#out-of-credit":       "out-of-credit",
		"https://example.com/probs/x#out-of-credit?lang=en": "out-of-credit?lang=en", // a fragment's '?' is the fragment's
	} {
		e := resilient.ParseError(errorResponse(403, problem, `{"type":"`+typ+`","title":"t","status":403}`))
		if e == nil || e.Code != want || e.Dialect != "problem+json" {
			t.Errorf("type %q: ParseError = %+v, want Code %q", typ, e, want)
		}
	}
	base := &answers{steps: []answer{{status: 403, header: problem, body: `{"type":"https://example.com/probs/rate_limited?docs=1","title":"Slow down","status":403}`}, {status: 200}}}
	status, _, err := call(t, resilient.New(base, resilient.WithBackoff(0, 0)), context.Background(), http.MethodGet, "http://api.test/v1/posts", nil)
	if at, _, _ := base.sent(); status != 200 || err != nil || len(at) != 2 {
		t.Errorf("403 rate_limited problem with a query: %d, %v after %d attempts; want it retried (Throttled)", status, err, len(at))
	}
}

// errorResponse returns a response of status with header h and body, as a
// base RoundTripper would hand it over.
func errorResponse(status int, h http.Header, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// TestWithCodesOverridesThrottleCodeInAnySpelling: a common throttling
// code overridden with WithCodes under another spelling than the one
// DefaultCodes lists (quota_exceeded, the one it listed until the table
// took issue 3's quota-exceeded) takes the new class in every spelling
// the Transport matches, unless that spelling is overridden too. The
// override under quota_exceeded applied to QUOTA_EXCEEDED and
// quota-exceeded before the table's spelling changed, and to its exact
// spelling alone after.
func TestWithCodesOverridesThrottleCodeInAnySpelling(t *testing.T) {
	for _, tc := range []struct {
		codes    map[string]resilient.Class
		code     string
		attempts int
	}{
		{map[string]resilient.Class{"quota_exceeded": resilient.Permanent}, "quota_exceeded", 1},
		{map[string]resilient.Class{"quota_exceeded": resilient.Permanent}, "QUOTA_EXCEEDED", 1},
		{map[string]resilient.Class{"quota_exceeded": resilient.Permanent}, "quota-exceeded", 1},
		{map[string]resilient.Class{"Rate-Limited": resilient.Permanent}, "RATE_LIMITED", 1},
		// The spelling DefaultCodes lists, overridden itself, wins.
		{map[string]resilient.Class{"quota_exceeded": resilient.Permanent, "quota-exceeded": resilient.Throttled}, "QUOTA_EXCEEDED", 2},
		{map[string]resilient.Class{"quota_exceeded": resilient.Permanent, "quota-exceeded": resilient.Throttled}, "quota_exceeded", 1},
		// Of two other spellings overridden, the first in byte order
		// gives its class to the rest, whatever the order of the map.
		{map[string]resilient.Class{"QUOTA_EXCEEDED": resilient.Permanent, "quota_exceeded": resilient.Transient}, "Quota-Exceeded", 1},
		{map[string]resilient.Class{"QUOTA_EXCEEDED": resilient.Transient, "quota_exceeded": resilient.Permanent}, "Quota-Exceeded", 2},
	} {
		base := &answers{steps: []answer{{status: 400, header: http.Header{"Content-Type": {"application/json"}}, body: `{"code":"` + tc.code + `","message":"m"}`}, {status: 200}}}
		tr := resilient.New(base, resilient.WithBackoff(0, 0), resilient.WithCodes(tc.codes))
		status, _, err := call(t, tr, context.Background(), http.MethodGet, "http://api.test/v1/posts", nil)
		if at, _, _ := base.sent(); len(at) != tc.attempts || err != nil {
			t.Errorf("WithCodes(%v), code %q: %d, %v after %d attempts; want %d attempts", tc.codes, tc.code, status, err, len(at), tc.attempts)
		}
	}
}

// TestDefaultCodesHoldTheVendorTables: the README's WithCodes default is
// "the three APIs' tables, …": DefaultCodes holds every code of
// AidellyCodes, AltyaaCodes and PostatoCodes with its class, and Stripe's
// idempotency_key_in_use, Google's rate-limit reasons and the common
// throttling codes besides.
func TestDefaultCodesHoldTheVendorTables(t *testing.T) {
	def := resilient.DefaultCodes()
	for name, table := range map[string]map[string]resilient.Class{
		"AidellyCodes": resilient.AidellyCodes(), "AltyaaCodes": resilient.AltyaaCodes(), "PostatoCodes": resilient.PostatoCodes(),
	} {
		if len(table) == 0 {
			t.Errorf("%s() is empty", name)
		}
		for code, class := range table {
			if got, ok := def[code]; !ok || got != class {
				t.Errorf("DefaultCodes()[%q] = %v, %v; want %v, as in %s()", code, got, ok, class, name)
			}
		}
	}
	for code, class := range map[string]resilient.Class{
		"idempotency_key_in_use": resilient.Transient,
		"rateLimitExceeded":      resilient.Throttled,
		"userRateLimitExceeded":  resilient.Throttled,
		"rate_limit_exceeded":    resilient.Throttled,
		"too_many_requests":      resilient.Throttled,
	} {
		if got, ok := def[code]; !ok || got != class {
			t.Errorf("DefaultCodes()[%q] = %v, %v; want %v", code, got, ok, class)
		}
	}
}

// TestDialectNames: APIError.Dialect takes the values issue 3 names:
// "aidelly", "altyaa" and "postato" for the seed vendors' envelopes (both
// of Postato's: its error string and its platform error), "problem+json"
// for an RFC 9457 problem, and "generic" for the shapes many APIs share;
// issue 18 added "stripe" and "google", and keeps a vendor's name for the
// bodies recognizably its own (a Stripe body is no Altyaa's).
func TestDialectNames(t *testing.T) {
	for _, tc := range []struct {
		status      int
		contentType string
		body        string
		want        string
	}{
		{429, "application/json", `{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded"},"request_id":"7f3a"}`, "aidelly"},
		{400, "application/json", `{"error":{"code":"invalid_request","message":"publishAt must be a future timestamp","details":{"field":"publishAt"}}}`, "altyaa"},
		{400, "application/json", `{"error":"INVALID_REQUEST","message":"Body failed validation","details":{"content":["Required"]}}`, "postato"},
		{422, "application/json", `{"error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"Instagram rejected: file exceeds 100 MB","retryable":false}}`, "postato"},
		{403, "application/problem+json", `{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403}`, "problem+json"},
		{422, "application/json", `{"errors":[{"code":"VALIDATION_FAILED","message":"caption too long"}]}`, "generic"},
		{409, "application/json", `{"code":"conflict","message":"duplicate slug"}`, "generic"},
		{429, "application/json", `{"error":{"code":"rate_limited","message":"slow down"}}`, "generic"},
		{402, "application/json", `{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined.","doc_url":"https://stripe.com/docs/error-codes/card-declined"}}`, "stripe"},
		{429, "application/json", `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, "google"},
		{502, "text/html", `<html><body>Bad Gateway</body></html>`, ""},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.contentType}}, Body: io.NopCloser(strings.NewReader(tc.body))}
		if e := resilient.ParseError(resp); e == nil || e.Dialect != tc.want {
			t.Errorf("ParseError(%d %s).Dialect = %q, want %q", tc.status, tc.body, dialectOf(e), tc.want)
		}
	}
}

func dialectOf(e *resilient.APIError) string {
	if e == nil {
		return "(nil APIError)"
	}
	return e.Dialect
}
