package resilient

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// This file walks what the seeds (the vendors' documentation the library
// was designed from: /seeds) say a client must do with each documented
// answer, codes, statuses and headers, through the whole Transport. The
// code tables alone are in TestCodeTables; the rate-limit header formats
// alone in TestParseRateLimit.

// seedCase is one documented answer, and what the vendor says to do.
type seedCase struct {
	name   string
	method string
	status int
	header func(now time.Time) http.Header
	body   string
	class  Class
	tries  int           // server attempts when a success follows the answer
	wait   time.Duration // the server's wait the retry honors; 0 for backoff only
}

// aidellyQuota returns Aidelly's rate-limit headers, the reset an ISO-8601
// time reset from now, then pairs of names and values.
func aidellyQuota(limit, remaining string, reset time.Duration, kv ...string) func(time.Time) http.Header {
	return func(now time.Time) http.Header {
		h := vhdr(kv...)(now)
		h.Set("X-RateLimit-Limit", limit)
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Reset", now.Add(reset).UTC().Format(time.RFC3339))
		return h
	}
}

func aidellyBody(code string) string {
	return `{"success":false,"error":{"code":"` + code + `","message":"m"},"request_id":"7f3a9c1e-0000-4000-8000-000000000001"}`
}

var seedCases = []seedCase{
	// Aidelly (aidelly-error-catalog.txt, NOTES.md): a 429 carries
	// Retry-After in seconds beside X-RateLimit-* whose reset is an
	// ISO-8601 time; Retry-After is the wait. A 429 is refused before any
	// work, so a write is resent too.
	{"Aidelly 429 GET", "GET", 429, aidellyQuota("60", "0", 30*time.Second, "Retry-After", "30"), aidellyBody("PUBLIC_API_RATE_LIMITED"), Throttled, 2, 30 * time.Second},
	{"Aidelly 429 POST", "POST", 429, aidellyQuota("20", "0", 30*time.Second, "Retry-After", "30"), aidellyBody("PUBLIC_API_RATE_LIMITED"), Throttled, 2, 30 * time.Second},
	{"Aidelly 429, Retry-After before the reset", "GET", 429, aidellyQuota("60", "0", 45*time.Second, "Retry-After", "20"), aidellyBody("PUBLIC_API_RATE_LIMITED"), Throttled, 2, 20 * time.Second},
	{"Aidelly 429 without Retry-After: the ISO-8601 reset", "GET", 429, aidellyQuota("60", "0", 25*time.Second), aidellyBody("PUBLIC_API_RATE_LIMITED"), Throttled, 2, 25 * time.Second},
	// 5xx family: retry with backoff, writes with the same key.
	{"Aidelly 500 create failed", "POST", 500, aidellyQuota("20", "19", time.Minute), aidellyBody("PUBLIC_API_POST_CREATE_FAILED"), Transient, 2, 0},
	{"Aidelly 500 cancel failed", "POST", 500, vhdr(), aidellyBody("PUBLIC_API_POST_CANCEL_FAILED"), Transient, 2, 0},
	{"Aidelly 500 webhook create failed", "POST", 500, vhdr(), aidellyBody("PUBLIC_API_WEBHOOK_CREATE_FAILED"), Transient, 2, 0},
	{"Aidelly 500 media create failed", "POST", 500, vhdr(), aidellyBody("PUBLIC_API_MEDIA_CREATE_FAILED"), Transient, 2, 0},
	{"Aidelly 500 auth error", "GET", 500, vhdr(), aidellyBody("PUBLIC_API_AUTH_ERROR"), Transient, 2, 0},
	{"Aidelly 500 context error", "GET", 500, vhdr(), aidellyBody("PUBLIC_API_CONTEXT_ERROR"), Transient, 2, 0},
	{"Aidelly 500 usage fetch failed", "GET", 500, vhdr(), aidellyBody("PUBLIC_API_USAGE_FETCH_FAILED"), Transient, 2, 0},
	// Non-retryable: fix the request first.
	{"Aidelly 422 publish failed, post persisted", "POST", 422, vhdr(), aidellyBody("PUBLIC_API_PUBLISH_FAILED"), Permanent, 1, 0},
	{"Aidelly 409 key reused with another payload", "POST", 409, vhdr(), aidellyBody("PUBLIC_API_IDEMPOTENCY_CONFLICT"), Permanent, 1, 0},
	{"Aidelly 409 post already terminal", "POST", 409, vhdr(), aidellyBody("PUBLIC_API_POST_CANCEL_INVALID_STATE"), Permanent, 1, 0},
	{"Aidelly 400 body invalid", "POST", 400, vhdr(), aidellyBody("PUBLIC_API_BODY_INVALID"), Permanent, 1, 0},
	{"Aidelly 400 query invalid", "GET", 400, vhdr(), aidellyBody("PUBLIC_API_QUERY_INVALID"), Permanent, 1, 0},
	{"Aidelly 401 key expired", "GET", 401, vhdr(), aidellyBody("PUBLIC_API_KEY_EXPIRED"), Permanent, 1, 0},
	{"Aidelly 403 brand forbidden", "GET", 403, vhdr(), aidellyBody("PUBLIC_API_BRAND_FORBIDDEN"), Permanent, 1, 0},
	{"Aidelly 404 post not found", "GET", 404, vhdr(), aidellyBody("PUBLIC_API_POST_NOT_FOUND"), Permanent, 1, 0},

	// Altyaa (altyaa-error-codes.txt): service_unavailable is retried
	// with backoff, rate_limit_exceeded after the server's wait; the rest
	// needs the request fixed. Its writes are not known to be deduplicated:
	// a write is resent only after a 429.
	{"Altyaa 503", "GET", 503, vhdr("X-Request-Id", "req_a"), `{"error":{"code":"service_unavailable","message":"m"}}`, Transient, 2, 0},
	{"Altyaa 503 POST: not resent", "POST", 503, vhdr("X-Request-Id", "req_a"), `{"error":{"code":"service_unavailable","message":"m"}}`, Transient, 1, 0},
	{"Altyaa 429", "POST", 429, vhdr("Retry-After", "12"), `{"error":{"code":"rate_limit_exceeded","message":"m"}}`, Throttled, 2, 12 * time.Second},
	{"Altyaa 409 conflict", "POST", 409, vhdr(), `{"error":{"code":"conflict","message":"duplicate slug"}}`, Permanent, 1, 0},
	{"Altyaa 400 invalid request", "POST", 400, vhdr(), `{"error":{"code":"invalid_request","message":"m","details":{"field":"publishAt","reason":"value is in the past"}}}`, Permanent, 1, 0},
	{"Altyaa 401", "GET", 401, vhdr(), `{"error":{"code":"unauthorized","message":"m"}}`, Permanent, 1, 0},
	{"Altyaa 403", "GET", 403, vhdr(), `{"error":{"code":"forbidden","message":"m"}}`, Permanent, 1, 0},
	{"Altyaa 404", "GET", 404, vhdr(), `{"error":{"code":"not_found","message":"m"}}`, Permanent, 1, 0},

	// Postato (postato-error-handling.txt): retry 429 after Retry-After,
	// 500, 502, 503, 504; never another 4xx. Its status table names no
	// code for 401, 409, 429 and the 5xx.
	{"Postato 429", "GET", 429, vhdr("Retry-After", "7", "X-Request-Id", "req_p"), `{"error":"RATE_LIMITED","message":"m"}`, Throttled, 2, 7 * time.Second},
	{"Postato 429 POST", "POST", 429, vhdr("Retry-After", "7"), `{"error":"RATE_LIMITED","message":"m"}`, Throttled, 2, 7 * time.Second},
	{"Postato 500", "GET", 500, vhdr(), `{"error":"INTERNAL_ERROR","message":"m"}`, Transient, 2, 0},
	{"Postato 502", "GET", 502, vhdr(), `{"error":"BAD_GATEWAY","message":"m"}`, Transient, 2, 0},
	{"Postato 503", "GET", 503, vhdr(), `{"error":"SERVICE_UNAVAILABLE","message":"m"}`, Transient, 2, 0},
	{"Postato 504", "GET", 504, vhdr(), `{"error":"GATEWAY_TIMEOUT","message":"m"}`, Transient, 2, 0},
	{"Postato 504 POST: not resent without the caller's key", "POST", 504, vhdr(), `{"error":"GATEWAY_TIMEOUT","message":"m"}`, Transient, 1, 0},
	{"Postato 400", "POST", 400, vhdr(), `{"error":"INVALID_REQUEST","message":"m","details":{"content":["Required"]}}`, Permanent, 1, 0},
	{"Postato 401", "GET", 401, vhdr(), `{"error":"UNAUTHORIZED","message":"m"}`, Permanent, 1, 0},
	{"Postato 403 permission_denied", "GET", 403, vhdr(), `{"error":"permission_denied","message":"m"}`, Permanent, 1, 0},
	{"Postato 403 plan_inactive", "POST", 403, vhdr(), `{"error":"plan_inactive","message":"m"}`, Permanent, 1, 0},
	{"Postato 403 policy_violation", "POST", 403, vhdr(), `{"error":"policy_violation","message":"m","facet":"f","reason":"r"}`, Permanent, 1, 0},
	{"Postato 403 workspace_required", "GET", 403, vhdr(), `{"error":"workspace_required","message":"m","available_workspaces":["w1","w2"]}`, Permanent, 1, 0},
	{"Postato 404", "GET", 404, vhdr(), `{"error":"not_found","message":"m"}`, Permanent, 1, 0},
	{"Postato 409 already revoked", "POST", 409, vhdr(), `{"error":"CONFLICT","message":"already revoked"}`, Permanent, 1, 0},
	{"Postato 422", "POST", 422, vhdr(), `{"error":"VALIDATION_FAILED","message":"m","errors":[{"field":"content","message":"too long","platform":"twitter"}]}`, Permanent, 1, 0},
	{"Postato platform error, retryable false", "GET", 500, vhdr(), `{"error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"m","retryable":false}}`, Permanent, 1, 0},

	// The other APIs NOTES.md names: X-Rate-Limit-* with a reset in Unix
	// seconds, the IETF draft's RateLimit fields, {"errors":[…]} and RFC
	// 9457 problems.
	{"X-Rate-Limit-Reset in Unix seconds", "GET", 429, func(now time.Time) http.Header {
		h := vhdr()(now)
		h.Set("X-Rate-Limit-Limit", "100")
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Add(40*time.Second).Unix(), 10))
		return h
	}, `{"errors":[{"code":"rate_limited","message":"m"}]}`, Throttled, 2, 40 * time.Second},
	{"IETF RateLimit", "GET", 429, vhdr("RateLimit", `"default";r=0;t=15`, "RateLimit-Policy", `"default";q=100;w=60`), `{"errors":[{"code":"too_many_requests","message":"m"}]}`, Throttled, 2, 15 * time.Second},
	{"problem 503", "GET", 503, vhdr("Content-Type", "application/problem+json"), `{"type":"about:blank","title":"Service Unavailable","status":503}`, Transient, 2, 0},
}

// TestSeedsDocumentedAnswers sends each documented answer, then a success,
// through a Transport with its defaults, in fake time: the attempt's
// class, the attempts the server gets, and the retry's wait are what the
// vendor's documentation says.
func TestSeedsDocumentedAnswers(t *testing.T) {
	for _, tc := range seedCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ok := 200
				if tc.method == "POST" {
					ok = 201
				}
				s := &rtScript{steps: []rtStep{{status: tc.status, header: tc.header(time.Now()), body: tc.body}, {status: ok}}}
				var attempts []Attempt
				tr := New(s, WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				var body io.Reader
				if tc.method == "POST" {
					body = strings.NewReader(`{"content":"hello"}`)
				}
				resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), tc.method, "https://api.test/v1/posts", body))
				resp.Body.Close()
				if a := attempts[0]; a.Class != tc.class || s.numCalls() != tc.tries {
					t.Fatalf("class %v after %d attempts (stop %q); want %v after %d", a.Class, s.numCalls(), a.StopReason, tc.class, tc.tries)
				}
				if tc.tries < 2 {
					return
				}
				gap := s.call(1).at.Sub(s.call(0).at)
				if tc.wait > 0 && (gap < tc.wait || gap > tc.wait+time.Second+tc.wait/10) {
					t.Errorf("retried after %v, want the server's %v", gap, tc.wait)
				}
				if tc.wait == 0 && gap > DefaultBackoffBase*2 {
					t.Errorf("retried after %v, want the first backoff (under %v)", gap, 2*DefaultBackoffBase)
				}
				if tc.method == "POST" {
					if k0, k1 := wireHeader(s.call(0).header, "Idempotency-Key"), wireHeader(s.call(1).header, "Idempotency-Key"); k0 == "" || k0 != k1 {
						t.Errorf("the write's keys %q, %q; want one key on both attempts", k0, k1)
					}
				}
			})
		})
	}
}

// TestSeedsAidellyQuotaPerKeyAndClass: Aidelly counts its rate limits per
// API key, reads (GET) and writes (POST, PATCH) apart, and announces them
// on every response with X-RateLimit-Reset as an ISO-8601 time. A read
// that spent the reads' quota of one key holds that key's reads until the
// reset, and neither its writes nor another key's reads.
func TestSeedsAidellyQuotaPerKeyAndClass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := &rtScript{steps: []rtStep{
			{status: 200, header: aidellyQuota("60", "0", 20*time.Second)(start), body: `{"success":true,"data":[],"request_id":"r1"}`},
			{status: 200},
		}}
		tr := New(s)
		send := func(method, key string) time.Duration {
			t.Helper()
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader(`{"content":"hello"}`)
			}
			req := newRequest(t, context.Background(), method, "https://api.aidelly.test/v1/posts", body)
			req.Header.Set("Authorization", "Bearer "+key)
			at := time.Now()
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("%s with %s: %v", method, key, err)
			}
			resp.Body.Close()
			return time.Since(at)
		}
		send("GET", "key1") // the reads' quota of key1 spent until start+20s
		if d := send("POST", "key1"); d != 0 {
			t.Errorf("key1's write waited %v, want none: writes are counted apart", d)
		}
		if d := send("GET", "key2"); d != 0 {
			t.Errorf("key2's read waited %v, want none: each key has its quota", d)
		}
		send("GET", "key1")
		if at := s.call(3).at.Sub(start); at < 20*time.Second || at > 21*time.Second {
			t.Errorf("key1's next read sent at +%v, want at the reset, +20s", at)
		}
	})
}
