package resilient

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// vendorCase is an error response of an API other than the three seeds,
// headers and body as the vendor documents them, and what the Transport
// makes of it.
type vendorCase struct {
	name   string
	status int
	header func(now time.Time) http.Header
	body   string
	want   APIError // as ParseError returns it
	class  Class    // the default decision
	tries  int      // server attempts of a GET answered this, then 200
}

// vhdr returns a header function for fixed values: pairs of names and
// values.
func vhdr(kv ...string) func(time.Time) http.Header {
	return func(time.Time) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
}

// githubRequestID is the X-GitHub-Request-Id of githubQuota's headers.
const githubRequestID = "CAFE:1234:5678:9ABC:65A1B2C3"

// githubQuota returns GitHub's rate-limit headers with remaining requests
// left and the reset after d.
func githubQuota(remaining int, d time.Duration, kv ...string) func(time.Time) http.Header {
	return func(now time.Time) http.Header {
		h := vhdr(kv...)(now)
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Used", strconv.Itoa(5000-remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(d).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		h.Set("X-GitHub-Request-Id", githubRequestID)
		return h
	}
}

const (
	stripeLockTimeout = `{"error":{"code":"lock_timeout","doc_url":"https://stripe.com/docs/error-codes/lock-timeout","message":"This object cannot be accessed right now because another API request or Stripe process is currently accessing it.","type":"invalid_request_error"}}`
	stripeAPIError    = `{"error":{"message":"An unknown error occurred","request_log_url":"https://dashboard.stripe.com/logs/req_500","type":"api_error"}}`
	githubRateLimit   = `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`
	githubSecondary   = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	googleQuota       = `{"error":{"code":429,"message":"Quota exceeded for quota metric 'Read requests'.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com"}]}}`
)

var vendorCases = []vendorCase{
	// Stripe: Stripe-Should-Retry overrides the status both ways.
	{"Stripe 402 card declined", 402,
		vhdr("Request-Id", "req_card", "Stripe-Should-Retry", "false"),
		`{"error":{"charge":"ch_1","code":"card_declined","decline_code":"generic_decline","doc_url":"https://stripe.com/docs/error-codes/card-declined","message":"Your card was declined.","type":"card_error"}}`,
		APIError{StatusCode: 402, Code: "card_declined", Message: "Your card was declined.", RequestID: "req_card", Dialect: "stripe"}, Permanent, 1},
	{"Stripe 409 lock timeout, should retry", 409,
		vhdr("Request-Id", "req_lock", "Stripe-Should-Retry", "true"), stripeLockTimeout,
		APIError{StatusCode: 409, Code: "lock_timeout", Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.", RequestID: "req_lock", Retryable: true, Dialect: "stripe"}, Transient, 2},
	{"Stripe 409 without the hint", 409,
		vhdr("Request-Id", "req_lock"), stripeLockTimeout,
		APIError{StatusCode: 409, Code: "lock_timeout", Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.", RequestID: "req_lock", Dialect: "stripe"}, Permanent, 1},
	{"Stripe 500, should not retry", 500,
		vhdr("Request-Id", "req_500", "Stripe-Should-Retry", "false"), stripeAPIError,
		APIError{StatusCode: 500, Code: "api_error", Message: "An unknown error occurred", RequestID: "req_500", Dialect: "stripe"}, Permanent, 1},
	{"Stripe 500 without the hint", 500,
		vhdr("Request-Id", "req_500"), stripeAPIError,
		APIError{StatusCode: 500, Code: "api_error", Message: "An unknown error occurred", RequestID: "req_500", Retryable: true, Dialect: "stripe"}, Transient, 2},
	{"Stripe 429", 429,
		vhdr("Request-Id", "req_429", "Stripe-Should-Retry", "true"),
		`{"error":{"code":"rate_limit","doc_url":"https://stripe.com/docs/error-codes/rate-limit","message":"Request rate limit exceeded.","type":"invalid_request_error"}}`,
		APIError{StatusCode: 429, Code: "rate_limit", Message: "Request rate limit exceeded.", RequestID: "req_429", Retryable: true, Dialect: "stripe"}, Throttled, 2},

	// OpenAI: x-should-retry, x-request-id, the error object's type as
	// the code when it has none.
	{"OpenAI 429 rate limit", 429,
		vhdr("X-Request-Id", "req_oai", "Retry-After", "2", "X-Ratelimit-Limit-Requests", "500", "X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "120ms"),
		`{"error":{"message":"Rate limit reached for gpt-4o on requests per min (RPM): Limit 500, Used 500, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
		APIError{StatusCode: 429, Code: "rate_limit_exceeded", Message: "Rate limit reached for gpt-4o on requests per min (RPM): Limit 500, Used 500, Requested 1.", RequestID: "req_oai", Retryable: true, RetryAfter: 2 * time.Second, Dialect: "generic"}, Throttled, 2},
	{"OpenAI 429 quota spent, should not retry", 429,
		vhdr("X-Request-Id", "req_quota", "X-Should-Retry", "false"),
		`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
		APIError{StatusCode: 429, Code: "insufficient_quota", Message: "You exceeded your current quota, please check your plan and billing details.", RequestID: "req_quota", Dialect: "generic"}, Permanent, 1},
	{"OpenAI 500, should not retry", 500,
		vhdr("X-Request-Id", "req_500", "X-Should-Retry", "false"),
		`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`,
		APIError{StatusCode: 500, Code: "server_error", Message: "The server had an error while processing your request.", RequestID: "req_500", Dialect: "generic"}, Permanent, 1},
	{"OpenAI 409, should retry", 409,
		vhdr("X-Request-Id", "req_409", "X-Should-Retry", "true"),
		`{"error":{"message":"Another request is in progress.","type":"invalid_request_error","param":null,"code":"conflict"}}`,
		APIError{StatusCode: 409, Code: "conflict", Message: "Another request is in progress.", RequestID: "req_409", Retryable: true, Dialect: "generic"}, Transient, 2},
	{"a hint of another value is ignored", 409,
		vhdr("X-Should-Retry", "maybe"),
		`{"error":{"message":"m","type":"invalid_request_error","code":"conflict"}}`,
		APIError{StatusCode: 409, Code: "conflict", Message: "m", Dialect: "generic"}, Permanent, 1},

	// Anthropic: the body's request id, the type as the code.
	{"Anthropic 529 overloaded, should retry", 529,
		vhdr("Request-Id", "req_hdr", "X-Should-Retry", "true"),
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`,
		APIError{StatusCode: 529, Code: "overloaded_error", Message: "Overloaded", RequestID: "req_011CSHoEeqs5C35K2UUqR7Fy", Retryable: true, Dialect: "generic"}, Transient, 2},
	{"Anthropic 529 overloaded, no hint", 529,
		vhdr("Request-Id", "req_hdr"),
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_529"}`,
		APIError{StatusCode: 529, Code: "overloaded_error", Message: "Overloaded", RequestID: "req_529", Retryable: true, Dialect: "generic"}, Transient, 2},
	{"Anthropic 429", 429,
		vhdr("Request-Id", "req_429", "Retry-After", "5", "Anthropic-Ratelimit-Requests-Remaining", "0"),
		`{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit."},"request_id":"req_429b"}`,
		APIError{StatusCode: 429, Code: "rate_limit_error", Message: "Number of requests has exceeded your rate limit.", RequestID: "req_429b", Retryable: true, RetryAfter: 5 * time.Second, Dialect: "generic"}, Throttled, 2},

	// Google: the status name is the code, never the repeated number.
	{"Google 429 quota", 429, vhdr(), googleQuota,
		APIError{StatusCode: 429, Code: "RESOURCE_EXHAUSTED", Message: "Quota exceeded for quota metric 'Read requests'.", Retryable: true, Dialect: "google",
			Details: json.RawMessage(`[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com"}]`)}, Throttled, 2},
	{"Google 503", 503, vhdr(),
		`{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`,
		APIError{StatusCode: 503, Code: "UNAVAILABLE", Message: "The service is currently unavailable.", Retryable: true, Dialect: "google"}, Transient, 2},
	{"Google 400", 400, vhdr(),
		`{"error":{"code":400,"message":"Invalid value at 'range'.","status":"INVALID_ARGUMENT"}}`,
		APIError{StatusCode: 400, Code: "INVALID_ARGUMENT", Message: "Invalid value at 'range'.", Dialect: "google"}, Permanent, 1},
	// Google's older errors: a rate limit is a 403 with a reason; the
	// reason is the code when there is no status, and decides when the
	// status names no class.
	{"Google 403 rateLimitExceeded", 403, vhdr(),
		`{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}`,
		APIError{StatusCode: 403, Code: "rateLimitExceeded", Message: "Rate Limit Exceeded", Retryable: true, Dialect: "google"}, Throttled, 2},
	{"Google 403 userRateLimitExceeded with a status", 403, vhdr(),
		`{"error":{"code":403,"message":"User rate limit exceeded.","errors":[{"message":"User rate limit exceeded.","domain":"usageLimits","reason":"userRateLimitExceeded"}],"status":"PERMISSION_DENIED"}}`,
		APIError{StatusCode: 403, Code: "PERMISSION_DENIED", Message: "User rate limit exceeded.", Retryable: true, Dialect: "google"}, Throttled, 2},
	{"Google 403 daily limit: no retry passes it", 403, vhdr(),
		`{"error":{"errors":[{"domain":"usageLimits","reason":"dailyLimitExceeded","message":"Daily Limit Exceeded"}],"code":403,"message":"Daily Limit Exceeded"}}`,
		APIError{StatusCode: 403, Code: "dailyLimitExceeded", Message: "Daily Limit Exceeded", Dialect: "google"}, Permanent, 1},
	{"Google 403 quotaExceeded (YouTube's daily quota): no retry passes it", 403, vhdr(),
		`{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your quota.","errors":[{"message":"The request cannot be completed because you have exceeded your quota.","domain":"youtube.quota","reason":"quotaExceeded"}]}}`,
		APIError{StatusCode: 403, Code: "quotaExceeded", Message: "The request cannot be completed because you have exceeded your quota.", Dialect: "google"}, Permanent, 1},
	{"Google 403 forbidden", 403, vhdr(),
		`{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Forbidden"}],"code":403,"message":"Forbidden"}}`,
		APIError{StatusCode: 403, Code: "forbidden", Message: "Forbidden", Dialect: "google"}, Permanent, 1},
	{"a numeric code equal to the status is none", 429, vhdr(),
		`{"error":{"code":429,"message":"Quota exceeded"}}`,
		APIError{StatusCode: 429, Message: "Quota exceeded", Retryable: true, Dialect: "generic"}, Throttled, 2},

	// GitHub: a 403 is Throttled when its headers say the rate limit
	// refused it, and waits for Retry-After, else for the reset.
	{"GitHub 403 primary rate limit", 403, githubQuota(0, 30*time.Second), githubRateLimit,
		APIError{StatusCode: 403, Message: "API rate limit exceeded for user ID 1.", Retryable: true, RetryAfter: 30 * time.Second, RequestID: githubRequestID, Dialect: "generic"}, Throttled, 2},
	{"GitHub 403 primary rate limit, reset in an hour", 403, githubQuota(0, time.Hour), githubRateLimit,
		APIError{StatusCode: 403, Message: "API rate limit exceeded for user ID 1.", Retryable: true, RetryAfter: time.Hour, RequestID: githubRequestID, Dialect: "generic"}, Throttled, 1},
	{"GitHub 403 secondary rate limit", 403, githubQuota(4000, time.Hour, "Retry-After", "60"), githubSecondary,
		APIError{StatusCode: 403, Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", Retryable: true, RetryAfter: time.Minute, RequestID: githubRequestID, Dialect: "generic"}, Throttled, 2},
	{"GitHub 429 secondary rate limit", 429, githubQuota(4000, time.Hour, "Retry-After", "45"), githubSecondary,
		APIError{StatusCode: 429, Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", Retryable: true, RetryAfter: 45 * time.Second, RequestID: githubRequestID, Dialect: "generic"}, Throttled, 2},
	{"GitHub 403 forbidden", 403, githubQuota(4999, time.Hour),
		`{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"403"}`,
		APIError{StatusCode: 403, Message: "Resource not accessible by integration", RequestID: githubRequestID, Dialect: "generic"}, Permanent, 1},
	{"GitHub 403 without rate-limit headers", 403, vhdr(),
		`{"message":"Must have admin rights to Repository.","documentation_url":"https://docs.github.com/rest"}`,
		APIError{StatusCode: 403, Message: "Must have admin rights to Repository.", Dialect: "generic"}, Permanent, 1},
	{"GitHub 422 validation", 422, githubQuota(4998, time.Hour),
		`{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"}],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}`,
		APIError{StatusCode: 422, Code: "missing_field", Message: "Validation Failed", RequestID: githubRequestID, Dialect: "generic"}, Permanent, 1},
	{"a known code wins over a spent quota", 403, githubQuota(0, 30*time.Second),
		`{"success":false,"error":{"code":"PUBLIC_API_SCOPE_FORBIDDEN","message":"Missing scope"},"request_id":"r1"}`,
		APIError{StatusCode: 403, Code: "PUBLIC_API_SCOPE_FORBIDDEN", Message: "Missing scope", RequestID: "r1", Dialect: "aidelly"}, Permanent, 1},

	// RFC 9457 problem documents.
	{"problem 503 with Retry-After", 503, vhdr("Content-Type", "application/problem+json", "Retry-After", "10"),
		`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Down for maintenance."}`,
		APIError{StatusCode: 503, Message: "Down for maintenance.", Retryable: true, RetryAfter: 10 * time.Second, Dialect: "problem+json"}, Transient, 2},
	{"problem 403 out of credit", 403, vhdr("Content-Type", "application/problem+json"),
		`{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403,"detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc","balance":30}`,
		APIError{StatusCode: 403, Code: "out-of-credit", Message: "Your current balance is 30, but that costs 50.", Dialect: "problem+json"}, Permanent, 1},
	{"problem 422 validation", 422, vhdr("Content-Type", "application/problem+json"),
		`{"type":"https://example.net/validation-error","title":"Your request is not valid.","errors":[{"detail":"must be a positive integer","pointer":"#/age"}]}`,
		APIError{StatusCode: 422, Code: "validation-error", Message: "Your request is not valid.", Dialect: "problem+json"}, Permanent, 1},
}

// TestVendorResponses classifies real error responses of other vendors,
// through ParseError and through the Transport (defaults, fake time).
func TestVendorResponses(t *testing.T) {
	for _, tc := range vendorCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				step := rtStep{status: tc.status, header: tc.header(time.Now()), body: tc.body}
				resp := newResponse(step)
				var e *APIError
				body := readBodyAfter(t, resp, func() { e = ParseError(resp) })
				checkAPIError(t, e, tc.want)
				if body != tc.body {
					t.Errorf("body after ParseError = %q", body)
				}
				if s := e.Error(); strings.Contains(s, strconv.Itoa(tc.status)+" "+strconv.Itoa(tc.status)) {
					t.Errorf("Error() = %q repeats the status", s)
				}

				s := &rtScript{steps: []rtStep{step, {status: 200}}}
				var attempts []Attempt
				tr := New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				resp, _ = roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/x", nil))
				resp.Body.Close()
				a := attempts[0]
				if a.Class != tc.class || a.Code != tc.want.Code || a.RetryAfter != tc.want.RetryAfter || s.numCalls() != tc.tries {
					t.Errorf("class %v, code %q, RetryAfter %v after %d attempts; want %v, %q, %v after %d",
						a.Class, a.Code, a.RetryAfter, s.numCalls(), tc.class, tc.want.Code, tc.want.RetryAfter, tc.tries)
				}
				if tc.tries == 2 && s.numCalls() == 2 && tc.want.RetryAfter > 0 {
					// The retry waited for the server's wait (plus at
					// most a tenth of it, up to a second, of spread).
					gap := s.call(1).at.Sub(s.call(0).at)
					if gap < tc.want.RetryAfter || gap > tc.want.RetryAfter+time.Second {
						t.Errorf("retried after %v, want %v", gap, tc.want.RetryAfter)
					}
				}
			})
		})
	}
}
