package envelope

import (
	"fmt"
	"strings"
	"testing"
)

// parse runs Parse and formats what it found, details as a string.
func parse(data string, problem bool) (string, bool) {
	e, ok := Parse([]byte(data), problem)
	return fmt.Sprintf("shape=%s vendor=%s code=%q numeric=%v type=%q success=%v message=%q request=%q details=%s retryable=%d reason=%q",
		e.Shape, e.Vendor, e.Code, e.NumericCode, e.ErrorType, e.Success, e.Message, e.RequestID, e.Details, e.Retryable, e.Reason), ok
}

func TestParse(t *testing.T) {
	nest := func(n int) string { return strings.Repeat(`[`, n) + strings.Repeat(`]`, n) }
	tests := []struct {
		name    string
		data    string
		problem bool
		ok      bool
		want    Envelope
	}{
		// Real bodies, as their APIs document them.
		{"Stripe, invalid request", `{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such customer: 'cus_123'","param":"id","request_log_url":"https://dashboard.stripe.com/test/logs/req_abc?t=1","type":"invalid_request_error"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Stripe, Code: "resource_missing", ErrorType: "invalid_request_error", Message: "No such customer: 'cus_123'", Retryable: -1}},
		{"Stripe, card declined", `{"error":{"charge":"ch_1","code":"card_declined","decline_code":"generic_decline","doc_url":"https://stripe.com/docs/error-codes/card-declined","message":"Your card was declined.","type":"card_error"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Stripe, Code: "card_declined", ErrorType: "card_error", Message: "Your card was declined.", Retryable: -1}},
		{"Stripe, API error without a code", `{"error":{"message":"An unknown error occurred","request_log_url":"https://dashboard.stripe.com/logs/req_x","type":"api_error"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Stripe, Code: "api_error", ErrorType: "api_error", Message: "An unknown error occurred", Retryable: -1}},
		{"Stripe-like, other host", `{"error":{"code":"x","doc_url":"https://stripe.com.example/docs","type":"card_error"}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "x", ErrorType: "card_error", Retryable: -1}},
		{"Google, quota", `{"error":{"code":429,"message":"Quota exceeded for quota metric 'Queries'.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com"}]}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Google, Code: "RESOURCE_EXHAUSTED", Message: "Quota exceeded for quota metric 'Queries'.", Details: []byte(`[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com"}]`), Retryable: -1}},
		{"Google, unavailable", `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Google, Code: "UNAVAILABLE", Message: "The service is currently unavailable.", Retryable: -1}},
		{"Google, older errors: rate limit on a 403", `{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Google, Code: "rateLimitExceeded", Message: "Rate Limit Exceeded", Reason: "rateLimitExceeded", Retryable: -1}},
		{"Google, older errors with a status", `{"error":{"code":403,"message":"User rate limit exceeded.","errors":[{"message":"User rate limit exceeded.","domain":"usageLimits","reason":"userRateLimitExceeded"},{"domain":"global","reason":"other"}],"status":"PERMISSION_DENIED"}}`, false, true,
			Envelope{Shape: ErrorObject, Vendor: Google, Code: "PERMISSION_DENIED", Message: "User rate limit exceeded.", Reason: "userRateLimitExceeded", Retryable: -1}},
		{"errors items without a domain are not Google's", `{"error":{"code":403,"message":"m","errors":[{"reason":"rateLimitExceeded"}]}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "403", NumericCode: true, Message: "m", Retryable: -1}},
		{"a reason under a string code is not Google's", `{"error":{"code":"denied","errors":[{"domain":"d","reason":"rateLimitExceeded"}]}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "denied", Retryable: -1}},
		{"a reason that is a sentence is no code", `{"error":{"code":403,"errors":[{"domain":"d","reason":"Rate limit exceeded."}]}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "403", NumericCode: true, Retryable: -1}},
		{"errors that are not objects", `{"error":{"code":403,"message":"m","errors":["rateLimitExceeded"]}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "403", NumericCode: true, Message: "m", Retryable: -1}},
		{"Google-like without a status", `{"error":{"code":429,"message":"Quota exceeded"}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "429", NumericCode: true, Message: "Quota exceeded", Retryable: -1}},
		{"status that is no google.rpc.Code", `{"error":{"code":400,"status":"BAD","message":"m"}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "400", NumericCode: true, Message: "m", Retryable: -1}},
		{"OpenAI, rate limit", `{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM).","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "rate_limit_exceeded", ErrorType: "tokens", Message: "Rate limit reached for gpt-4o on tokens per min (TPM).", Retryable: -1}},
		{"OpenAI, server error", `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "server_error", ErrorType: "server_error", Message: "The server had an error while processing your request.", Retryable: -1}},
		{"Anthropic, overloaded", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`, false, true,
			Envelope{Shape: ErrorObject, Code: "overloaded_error", ErrorType: "overloaded_error", Message: "Overloaded", RequestID: "req_011CSHoEeqs5C35K2UUqR7Fy", Retryable: -1}},
		{"a type that is a sentence is no code", `{"error":{"type":"Something went wrong","message":"m"}}`, false, true,
			Envelope{Shape: ErrorObject, ErrorType: "Something went wrong", Message: "m", Retryable: -1}},
		{"GitHub, rate limit", `{"message":"API rate limit exceeded for 203.0.113.7.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`, false, true,
			Envelope{Shape: Message, Message: "API rate limit exceeded for 203.0.113.7.", Retryable: -1}},
		{"GitHub, validation", `{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"}],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "missing_field", Message: "Validation Failed", Retryable: -1}},
		{"JSON:API", `{"errors":[{"status":"422","code":"too_short","title":"Invalid Attribute","detail":"First name must contain at least two characters."}]}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "too_short", Message: "First name must contain at least two characters.", Retryable: -1}},
		{"RFC 9457, section 3", `{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc","balance":30}`, true, true,
			Envelope{Shape: Problem, Code: "out-of-credit", Message: "Your current balance is 30, but that costs 50.", Retryable: -1}},
		{"RFC 9457, validation errors", `{"type":"https://example.net/validation-error","title":"Your request is not valid.","errors":[{"detail":"must be a positive integer","pointer":"#/age"}]}`, true, true,
			Envelope{Shape: Problem, Code: "validation-error", Message: "Your request is not valid.", Retryable: -1}},
		{"OAuth 2.0", `{"error":"invalid_grant","error_description":"The refresh token is invalid."}`, false, true,
			Envelope{Shape: ErrorString, Code: "invalid_grant", Message: "The refresh token is invalid.", Retryable: -1}},
		{"Aidelly", `{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded"},"request_id":"7f3a9c1e"}`, false, true,
			Envelope{Shape: ErrorObject, Code: "PUBLIC_API_RATE_LIMITED", Success: true, Message: "Rate limit exceeded", RequestID: "7f3a9c1e", Retryable: -1}},
		{"Fastify: the reason phrase beside the code", `{"statusCode":400,"code":"FST_ERR_VALIDATION","error":"Bad Request","message":"body must have required property 'content'"}`, false, true,
			Envelope{Shape: ErrorString, Code: "FST_ERR_VALIDATION", Message: "body must have required property 'content'", Retryable: -1}},
		{"a one-word reason phrase beside the code", `{"error":"forbidden","code":"rate_limited"}`, false, true,
			Envelope{Shape: ErrorString, Code: "rate_limited", Retryable: -1}},
		{"a reason phrase beside digits", `{"error":"Too Many Requests","code":"429"}`, false, true,
			Envelope{Shape: ErrorString, Code: "Too Many Requests", Retryable: -1}},
		{"an error string that is a code, beside a code", `{"error":"invalid_grant","code":"x"}`, false, true,
			Envelope{Shape: ErrorString, Code: "invalid_grant", Retryable: -1}},
		{"Box: a bare type beside the code", `{"type":"error","status":404,"code":"not_found","message":"Not Found","request_id":"abcdef123456"}`, false, true,
			Envelope{Shape: Problem, Code: "not_found", Message: "Not Found", RequestID: "abcdef123456", Retryable: -1}},
		{"a bare type of a declared problem", `{"type":"out-of-credit","status":403,"code":"E1"}`, true, true,
			Envelope{Shape: Problem, Code: "out-of-credit", Retryable: -1}},
		{"a type URI beside a code", `{"type":"https://x.test/probs/out-of-credit","status":403,"code":"E1"}`, false, true,
			Envelope{Shape: Problem, Code: "out-of-credit", Retryable: -1}},

		// encoding/json's rules: the whole input is one JSON object.
		{"trailing data", `{"code":"C"} x`, false, false, Envelope{Retryable: -1}},
		{"two objects", `{"code":"C"}{}`, false, false, Envelope{Retryable: -1}},
		{"trailing white space", "{\"code\":\"C\"}\r\n\t ", false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"double minus", `{"code":--1}`, false, false, Envelope{Retryable: -1}},
		{"lone minus", `{"code":-}`, false, false, Envelope{Retryable: -1}},
		{"leading zero", `{"code":00}`, false, false, Envelope{Retryable: -1}},
		{"hex", `{"code":0x1F}`, false, false, Envelope{Retryable: -1}},
		{"NaN", `{"code":NaN}`, false, false, Envelope{Retryable: -1}},
		{"number", `{"code":-0.5E+10}`, false, true, Envelope{Shape: CodeMessage, Code: "-0.5E+10", NumericCode: true, Retryable: -1}},
		{"single quotes", `{'code':'C'}`, false, false, Envelope{Retryable: -1}},
		{"comment", `{"code":"C"/* x */}`, false, false, Envelope{Retryable: -1}},
		{"an array", `[{"code":"C"}]`, false, false, Envelope{Retryable: -1}},
		{"null", `null`, false, false, Envelope{Retryable: -1}},
		{"empty", ``, false, false, Envelope{Retryable: -1}},
		// RFC 8259 lets a parser ignore a leading byte-order mark, which
		// .NET's UTF-8 writers add; anywhere else it is no white space.
		{"BOM", "\ufeff{\"code\":\"C\"}", false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"BOM after white space", " \ufeff{\"code\":\"C\"}", false, false, Envelope{Retryable: -1}},
		{"two BOMs", "\ufeff\ufeff{\"code\":\"C\"}", false, false, Envelope{Retryable: -1}},

		// Member names: escapes decoded, case ignored.
		{"escaped names", `{"\u0065rror":{"c\u006fde":"C","m\u0065ssage":"M"}}`, false, true,
			Envelope{Shape: ErrorObject, Code: "C", Message: "M", Retryable: -1}},
		{"case variants", `{"ERROR":{"Code":"C","Message":"M","RETRYABLE":true},"Request_Id":"R"}`, false, true,
			Envelope{Shape: ErrorObject, Code: "C", Message: "M", RequestID: "R", Retryable: 1}},
		{"requestID and requestid", `{"code":"C","RequestID":"R"}`, false, true,
			Envelope{Shape: CodeMessage, Code: "C", RequestID: "R", Retryable: -1}},
		{"escaped values", `{"code":"caf\u00e9","message":"a\"b\\c\/d\n\ud83d\ude00"}`, false, true,
			Envelope{Shape: CodeMessage, Code: "café", Message: "a\"b\\c/d\n😀", Retryable: -1}},

		// A repeated member keeps its first value of the expected kind.
		{"repeated code", `{"code":"A","Code":"B"}`, false, true, Envelope{Shape: CodeMessage, Code: "A", Retryable: -1}},
		{"repeated code, first of another kind", `{"code":{},"code":"B"}`, false, true, Envelope{Shape: CodeMessage, Code: "B", Retryable: -1}},
		{"repeated retryable", `{"code":"A","retryable":"yes","retryable":false,"retryable":true}`, false, true, Envelope{Shape: CodeMessage, Code: "A", Retryable: 0}},
		{"repeated details", `{"code":"A","details":[1],"details":[2]}`, false, true, Envelope{Shape: CodeMessage, Code: "A", Details: []byte(`[1]`), Retryable: -1}},

		// Members of unexpected kinds are ignored, not errors.
		{"error is a number", `{"error":500,"message":"M"}`, false, true, Envelope{Shape: Message, Message: "M", Retryable: -1}},
		{"error is an array", `{"error":["x"],"code":"C"}`, false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"error is null", `{"error":null,"code":"C"}`, false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"meta is a string", `{"meta":"x","error":"E"}`, false, true, Envelope{Shape: ErrorString, Code: "E", Retryable: -1}},
		{"meta request id", `{"code":"C","meta":{"requestId":"M"}}`, false, true, Envelope{Shape: CodeMessage, Code: "C", RequestID: "M", Retryable: -1}},
		{"code is an object", `{"code":{"a":1},"message":"M"}`, false, true, Envelope{Shape: Message, Message: "M", Retryable: -1}},
		{"message is a number", `{"code":"C","message":5}`, false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"errors of strings", `{"errors":["x",{"code":"C"}]}`, false, true, Envelope{Shape: ErrorsArray, Retryable: -1}},
		{"errors with space", "{\"errors\":[ \n{\"code\":\"C\"}]}", false, true, Envelope{Shape: ErrorsArray, Code: "C", Retryable: -1}},
		{"empty error object", `{"error":{},"message":"M"}`, false, true, Envelope{Shape: Message, Message: "M", Retryable: -1}},
		{"unknown members only", `{"hello":"world","list":[1,{"a":null}]}`, false, true, Envelope{Retryable: -1}},

		// An item of the errors is a part of a document that has a code
		// of its own: its retryable flag is not the document's.
		{"error string with retryable errors", `{"error":"VALIDATION_FAILED","message":"M","errors":[{"origin":"platform","code":"MEDIA_TOO_LARGE","retryable":true}]}`, false, true,
			Envelope{Shape: ErrorString, Code: "VALIDATION_FAILED", Message: "M", Retryable: -1}},
		{"error string, its own retryable", `{"error":"E","retryable":false,"errors":[{"retryable":true}]}`, false, true,
			Envelope{Shape: ErrorString, Code: "E", Retryable: 0}},
		{"problem with retryable errors", `{"type":"https://x.test/probs/validation","title":"T","status":422,"errors":[{"code":"F","retryable":true}]}`, false, true,
			Envelope{Shape: Problem, Code: "validation", Message: "T", Retryable: -1}},
		{"problem coded by its errors", `{"type":"about:blank","title":"T","status":503,"errors":[{"code":"F","retryable":true}]}`, false, true,
			Envelope{Shape: Problem, Code: "F", Message: "T", Retryable: 1}},
		{"code with retryable errors", `{"code":"VALIDATION_FAILED","message":"M","errors":[{"code":"F","message":"I","retryable":true}]}`, false, true,
			Envelope{Shape: CodeMessage, Code: "VALIDATION_FAILED", Message: "M", Retryable: -1}},
		{"code, its own retryable", `{"code":"E","retryable":false,"errors":[{"code":"F","retryable":true}]}`, false, true,
			Envelope{Shape: CodeMessage, Code: "E", Message: "", Retryable: 0}},
		{"numeric code with errors", `{"code":400,"message":"M","errors":[{"code":"F","message":"I","retryable":true}]}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "F", Message: "I", Retryable: 1}},
		{"code of digits with errors", `{"code":"400","message":"M","errors":[{"code":"F","message":"I","retryable":true}]}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "F", Message: "I", Retryable: 1}},
		{"errors array", `{"errors":[{"code":"F","retryable":true}]}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "F", Retryable: 1}},
		// Nor are its details and request id: a Postato 422 whose
		// errors[] items carry their own keeps its details ({ field:
		// string[] }) and its request id.
		{"error string, its own details and request id", `{"error":"VALIDATION_FAILED","message":"M","details":{"content":["Required"]},"request_id":"R","errors":[{"field":"content","details":{"max":280},"request_id":"I"}]}`, false, true,
			Envelope{Shape: ErrorString, Code: "VALIDATION_FAILED", Message: "M", RequestID: "R", Details: []byte(`{"content":["Required"]}`), Retryable: -1}},
		{"code, its own details and request id", `{"code":"E","details":{"a":1},"meta":{"requestId":"R"},"errors":[{"code":"F","details":{"b":2},"requestId":"I"}]}`, false, true,
			Envelope{Shape: CodeMessage, Code: "E", RequestID: "R", Details: []byte(`{"a":1}`), Retryable: -1}},
		{"problem, its own request id", `{"type":"https://x.test/probs/validation","title":"T","status":422,"request_id":"R","errors":[{"code":"F","request_id":"I"}]}`, false, true,
			Envelope{Shape: Problem, Code: "validation", Message: "T", RequestID: "R", Retryable: -1}},
		{"errors array, the first's details and request id", `{"errors":[{"code":"F","details":{"b":2},"request_id":"I"}],"request_id":"R"}`, false, true,
			Envelope{Shape: ErrorsArray, Code: "F", RequestID: "I", Details: []byte(`{"b":2}`), Retryable: -1}},

		// The depth bound, brackets inside strings aside.
		{"at the bound", `{"a":` + nest(MaxDepth-1) + `,"code":"C"}`, false, true, Envelope{Shape: CodeMessage, Code: "C", Retryable: -1}},
		{"past the bound", `{"a":` + nest(MaxDepth) + `,"code":"C"}`, false, false, Envelope{Retryable: -1}},
		{"brackets in strings", `{"code":"` + strings.Repeat("[{", 100) + `\"` + `","message":"]}"}`, false, true,
			Envelope{Shape: CodeMessage, Code: strings.Repeat("[{", 100) + `"`, Message: "]}", Retryable: -1}},
	}
	for _, tc := range tests {
		got, ok := parse(tc.data, tc.problem)
		want := fmt.Sprintf("shape=%s vendor=%s code=%q numeric=%v type=%q success=%v message=%q request=%q details=%s retryable=%d reason=%q",
			tc.want.Shape, tc.want.Vendor, tc.want.Code, tc.want.NumericCode, tc.want.ErrorType, tc.want.Success, tc.want.Message, tc.want.RequestID, tc.want.Details, tc.want.Retryable, tc.want.Reason)
		if ok != tc.ok || got != want {
			t.Errorf("%s: Parse(%.60q) =\n\t%s, %v\nwant\n\t%s, %v", tc.name, tc.data, got, ok, want, tc.ok)
		}
	}
}

// TestParseCopiesDetails: the details outlive the input.
func TestParseCopiesDetails(t *testing.T) {
	data := []byte(`{"error":{"code":"C","details":{"f":1}}}`)
	e, ok := Parse(data, false)
	for i := range data {
		data[i] = 'x'
	}
	if !ok || string(e.Details) != `{"f":1}` {
		t.Errorf("details = %s, %v after the input changed", e.Details, ok)
	}
}

func TestProblemCode(t *testing.T) {
	for typ, want := range map[string]string{
		"":            "",
		"about:blank": "",
		"https://example.com/probs/out-of-credit": "out-of-credit",
		"https://example.com/probs/x/":            "x",
		"https://example.com/probs/x//":           "x",
		"/errors/not-found":                       "not-found",
		"urn:problem:rate_limited":                "rate_limited",
		"https://example.com/errors#conflict":     "conflict",
		"plain":                                   "plain",
		"/":                                       "",
	} {
		if got := ProblemCode(typ); got != want {
			t.Errorf("ProblemCode(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestWithinDepth(t *testing.T) {
	tests := []struct {
		data string
		max  int
		want bool
	}{
		{`{}`, 1, true},
		{`{"a":{}}`, 1, false},
		{`[[]]`, 2, true},
		{`[[[]]]`, 2, false},
		{`{"a":"[[[[","b":"\"[[["}`, 1, true},
		{`{"a":"\\","b":[[]]}`, 2, false}, // an escaped backslash ends no string
		{`]]]][[[`, 3, true},              // malformed: for the decoder to reject
	}
	for _, tc := range tests {
		if got := withinDepth([]byte(tc.data), tc.max); got != tc.want {
			t.Errorf("withinDepth(%s, %d) = %v, want %v", tc.data, tc.max, got, tc.want)
		}
	}
}

func TestOnStripe(t *testing.T) {
	for u, want := range map[string]bool{
		"https://stripe.com/docs/error-codes/x":         true,
		"https://docs.stripe.com/error-codes/x":         true,
		"https://dashboard.stripe.com/logs/req_1":       true,
		"http://stripe.com/docs":                        false,
		"https://stripe.com.example/docs":               false,
		"https://example.com/stripe.com":                false,
		"https://stripe.com":                            true,
		"https://docs.stripe.com?q=1":                   true,
		"https://user@stripe.com/docs":                  false,
		"https://stripe.com:8443/docs":                  false,
		"https://notstripe.com/docs":                    false,
		"https://user@evil.example/?https://stripe.com": false,
		"": false,
	} {
		if got := onStripe(u); got != want {
			t.Errorf("onStripe(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"invalid_request_error": true,
		"overloaded-error.v2":   true,
		"":                      false,
		"two words":             false,
		"https://x.test/p":      false,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"caf\u00e9":             false,
	} {
		if got := isToken(s); got != want {
			t.Errorf("isToken(%q) = %v, want %v", s, got, want)
		}
	}
}
