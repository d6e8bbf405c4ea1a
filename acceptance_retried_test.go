package resilient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// failing is a base RoundTripper whose every attempt fails with err
// before any response; it counts its attempts.
type failing struct {
	err      error
	attempts int
}

func (f *failing) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	f.attempts++
	return nil, f.err
}

// TestWhatIsRetriedTable walks the README's "What is retried" table row
// by row through the public API: for each outcome, how many attempts a
// call with the default options makes (6 when retried: 5 retries), and,
// for a wait the server named, how long the retry waited.
func TestWhatIsRetriedTable(t *testing.T) {
	const url = "http://api.test/v1/posts"
	json := http.Header{"Content-Type": {"application/json"}}
	with := func(kv ...string) http.Header {
		h := json.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	envelope := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	googleBody := func(reason string) string {
		return `{"error":{"code":403,"message":"m","errors":[{"domain":"usageLimits","reason":"` + reason + `","message":"m"}]}}`
	}
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`
	for _, tc := range []struct {
		row      string
		method   string
		answer   answer
		opts     []resilient.Option
		attempts int           // want
		wait     time.Duration // want before the first retry, when not 0
	}{
		{row: "200", answer: answer{status: 200}, attempts: 1},
		{row: "204", answer: answer{status: 204}, attempts: 1},
		{row: "302", answer: answer{status: 302, header: http.Header{"Location": {"/elsewhere"}}}, attempts: 1},
		{row: "304", answer: answer{status: 304}, attempts: 1},
		{row: "408", answer: answer{status: 408}, attempts: 6},
		{row: "500", answer: answer{status: 500}, attempts: 6},
		{row: "502", answer: answer{status: 502}, attempts: 6},
		{row: "503", answer: answer{status: 503}, attempts: 6},
		{row: "504", answer: answer{status: 504}, attempts: 6},
		{row: "529", answer: answer{status: 529}, attempts: 6},
		{row: "code PUBLIC_API_POST_CREATE_FAILED", answer: answer{status: 400, header: json, body: envelope("PUBLIC_API_POST_CREATE_FAILED")}, attempts: 6},
		{row: "code service_unavailable", answer: answer{status: 400, header: json, body: envelope("service_unavailable")}, attempts: 6},
		{row: "429 Retry-After 3", answer: answer{status: 429, header: with("Retry-After", "3")}, attempts: 6, wait: 3 * time.Second},
		{row: "code PUBLIC_API_RATE_LIMITED", answer: answer{status: 400, header: with("Retry-After", "2"), body: envelope("PUBLIC_API_RATE_LIMITED")}, attempts: 6, wait: 2 * time.Second},
		{row: "code rate_limit_exceeded", answer: answer{status: 400, header: with("Retry-After", "2"), body: envelope("rate_limit_exceeded")}, attempts: 6, wait: 2 * time.Second},
		{row: "code too_many_requests", answer: answer{status: 400, header: with("Retry-After", "2"), body: envelope("too_many_requests")}, attempts: 6, wait: 2 * time.Second},
		{row: "403 Retry-After", answer: answer{status: 403, header: with("Retry-After", "4")}, attempts: 6, wait: 4 * time.Second},
		{row: "403 X-RateLimit-Remaining 0", answer: answer{status: 403, header: with("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "5")}, attempts: 6, wait: 5 * time.Second},
		{row: "plain 403", answer: answer{status: 403, header: json, body: envelope("forbidden")}, attempts: 1},
		{row: "403 rateLimitExceeded", answer: answer{status: 403, header: json, body: googleBody("rateLimitExceeded")}, attempts: 6},
		{row: "403 userRateLimitExceeded", answer: answer{status: 403, header: json, body: googleBody("userRateLimitExceeded")}, attempts: 6},
		{row: "403 dailyLimitExceeded", answer: answer{status: 403, header: json, body: googleBody("dailyLimitExceeded")}, attempts: 1},
		{row: "403 quotaExceeded", answer: answer{status: 403, header: json, body: googleBody("quotaExceeded")}, attempts: 1},
		{row: "404", answer: answer{status: 404}, attempts: 1},
		{row: "501", answer: answer{status: 501}, attempts: 1},
		{row: "505", answer: answer{status: 505}, attempts: 1},
		{row: "507", answer: answer{status: 507}, attempts: 1},
		{row: `503 "retryable": false`, answer: answer{status: 503, header: json, body: `{"error":{"code":"x","message":"m","retryable":false}}`}, attempts: 1},
		{row: "503 Retry-After-Ms", answer: answer{status: 503, header: with("Retry-After-Ms", "1500", "Retry-After", "9")}, attempts: 6, wait: 1500 * time.Millisecond},
		{row: "503 X-Ms-Retry-After-Ms", answer: answer{status: 503, header: with("X-Ms-Retry-After-Ms", "1500", "Retry-After", "9")}, attempts: 6, wait: 1500 * time.Millisecond},
		{row: "400 Stripe-Should-Retry true", answer: answer{status: 400, header: with("Stripe-Should-Retry", "true")}, attempts: 6},
		{row: "503 Stripe-Should-Retry false", answer: answer{status: 503, header: with("Stripe-Should-Retry", "false")}, attempts: 1},
		{row: "400 X-Should-Retry true", answer: answer{status: 400, header: with("X-Should-Retry", "true")}, attempts: 6},
		{row: "503 X-Should-Retry false", answer: answer{status: 503, header: with("X-Should-Retry", "false")}, attempts: 1},
		{row: "429 X-Should-Retry true", answer: answer{status: 429, header: with("X-Should-Retry", "true", "Retry-After", "2")}, attempts: 6, wait: 2 * time.Second},
		{row: "POST 503, host not known to honor keys", method: "POST", answer: answer{status: 503}, attempts: 1},
		{row: "POST 503, host named", method: "POST", answer: answer{status: 503}, opts: []resilient.Option{resilient.WithKeyHonoringHosts("api.test")}, attempts: 6},
		{row: "PATCH 500, host not known to honor keys", method: "PATCH", answer: answer{status: 500}, attempts: 1},
		{row: "POST 429", method: "POST", answer: answer{status: 429, header: with("Retry-After", "1")}, attempts: 6, wait: time.Second},
		{row: "PUT 503", method: "PUT", answer: answer{status: 503}, attempts: 6},
		{row: "DELETE 503", method: "DELETE", answer: answer{status: 503}, attempts: 6},
		{row: "POST 409 PUBLIC_API_IDEMPOTENCY_CONFLICT", method: "POST", answer: answer{status: 409, header: json, body: envelope("PUBLIC_API_IDEMPOTENCY_CONFLICT")}, opts: []resilient.Option{resilient.WithKeyHonoringHosts("api.test")}, attempts: 1},
		{row: "POST 422 idempotency conflict", method: "POST", answer: answer{status: 422, header: json, body: envelope("PUBLIC_API_IDEMPOTENCY_CONFLICT")}, opts: []resilient.Option{resilient.WithKeyHonoringHosts("api.test")}, attempts: 1},
		{row: "PUT 400 PUBLIC_API_IDEMPOTENCY_REQUIRED", method: "PUT", answer: answer{status: 400, header: json, body: required}, attempts: 2},
		{row: "PUT 428 PUBLIC_API_IDEMPOTENCY_REQUIRED", method: "PUT", answer: answer{status: 428, header: json, body: required}, attempts: 2},
		{row: "POST 400 PUBLIC_API_IDEMPOTENCY_REQUIRED, WithoutIdempotencyKeys", method: "POST", answer: answer{status: 400, header: json, body: required}, opts: []resilient.Option{resilient.WithoutIdempotencyKeys()}, attempts: 1},
	} {
		t.Run(tc.row, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				method := tc.method
				if method == "" {
					method = "GET"
				}
				var body io.Reader
				if method != "GET" && method != "DELETE" {
					body = strings.NewReader(`{"text":"hi"}`)
				}
				base := &answers{steps: []answer{tc.answer}}
				var stops []resilient.StopReason
				opts := append([]resilient.Option{resilient.WithObserver(func(a resilient.Attempt) { stops = append(stops, a.StopReason) })}, tc.opts...)
				status, _, err := call(t, resilient.New(base, opts...), context.Background(), method, url, body)
				at, _, _ := base.sent()
				if status != tc.answer.status || len(at) != tc.attempts {
					t.Fatalf("%s %s: %d, %v after %d attempts; want the %d after %d", method, tc.row, status, err, len(at), tc.answer.status, tc.attempts)
				}
				if tc.wait != 0 {
					if d := at[1].Sub(at[0]); d < tc.wait || d > tc.wait+tc.wait/10+time.Second {
						t.Errorf("%s %s: waited %v before the first retry, want %v (and the spread of a shared pause)", method, tc.row, d, tc.wait)
					}
				}
				if strings.Contains(tc.row, "IDEMPOTENCY_REQUIRED") && tc.attempts == 2 {
					_, _, headers := base.sent()
					first, second := keyOf(headers[0]), keyOf(headers[1])
					if first != "" || second == "" {
						t.Errorf("%s %s: keys %q then %q; want none, then a generated one", method, tc.row, first, second)
					}
				}
				if method == "POST" || method == "PATCH" {
					if tc.attempts == 1 && tc.answer.status >= 500 && stops[0] != resilient.StopUnsafeWrite {
						t.Errorf("%s %s: stop reason %q, want %q", method, tc.row, stops[0], resilient.StopUnsafeWrite)
					}
				}
			})
		})
	}
	for _, tc := range []struct {
		row     string
		err     error
		retried bool
	}{
		{"connection lost", io.ErrUnexpectedEOF, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"certificate", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{"no such host", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.test", IsNotFound: true}}, false},
	} {
		t.Run(tc.row, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &failing{err: tc.err}
				_, _, err := call(t, resilient.New(base), context.Background(), "GET", url, nil)
				want := 1
				if tc.retried {
					want = 6
				}
				if err == nil || base.attempts != want {
					t.Errorf("%s: %v after %d attempts, want an error after %d", tc.row, err, base.attempts, want)
				}
			})
		})
	}
}

// keyOf returns the idempotency key h carries, under the canonical name or
// the lower-case one the Transport uses for a host not known to honor keys.
func keyOf(h http.Header) string {
	if k := h.Get("Idempotency-Key"); k != "" {
		return k
	}
	//lint:ignore SA1008 the Transport's lower-case entry, which net/http sends as it is spelled.
	if v := h["idempotency-key"]; len(v) > 0 {
		return v[0]
	}
	return ""
}
