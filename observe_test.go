package resilient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

var secrets = []string{"sk_live_secret", "topsecret", "api_key", "user-email@example.com", "Bearer", "session=abc",
	"proxy-secret", "xk_custom_secret", "set-cookie-secret"}

func TestLogRecordsEveryAttributeAndNoSecret(t *testing.T) {
	const envelope = `{"success":false,"error":{"code":"PUBLIC_API_POST_CREATE_FAILED","message":"Post persistence failed","details":{"email":"user-email@example.com"}},"request_id":"req-7f3"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", "7")
		w.Header().Set("X-RateLimit-Reset", "2026-02-17T14:00:00Z")
		w.Header().Set("Set-Cookie", "sid=set-cookie-secret")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, envelope)
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var attempts []Attempt
	tr := New(srv.Client().Transport, WithLogger(logger), WithMaxRetries(2), WithBackoff(time.Millisecond, time.Millisecond),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts?api_key=topsecret", strings.NewReader(`{"content":"hello","email":"user-email@example.com"}`))
	req.Header.Set("Authorization", "Bearer sk_live_secret")
	req.Header.Set("Cookie", "session=abc")
	req.Header.Set("Proxy-Authorization", "Basic proxy-secret")
	req.Header.Set("X-Api-Key", "xk_custom_secret")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != envelope {
		t.Fatalf("caller's body = %q, want the envelope intact", body)
	}

	logged := buf.String()
	for _, s := range secrets {
		if strings.Contains(logged, s) {
			t.Errorf("log contains secret %q:\n%s", s, logged)
		}
	}
	recs := logRecords(t, &buf)
	if len(recs) != 3 || len(attempts) != 3 {
		t.Fatalf("%d records and %d observed attempts, want 3 of each", len(recs), len(attempts))
	}
	wantLevels := []string{"WARN", "WARN", "ERROR"}
	attrs := []string{"method", "host", "path", "attempt", "max_attempts", "status", "code", "request_id",
		"idempotency_key", "ratelimit_limit", "ratelimit_remaining", "ratelimit_reset", "outcome", "duration"}
	for i, rec := range recs {
		if rec["level"] != wantLevels[i] {
			t.Errorf("record %d level %v, want %s", i, rec["level"], wantLevels[i])
		}
		for _, a := range attrs {
			if _, ok := rec[a]; !ok {
				t.Errorf("record %d lacks %q: %v", i, a, rec)
			}
		}
		// Unknown values are left out: no error (there was a
		// response), no delay on the last attempt.
		if _, ok := rec["error"]; ok {
			t.Errorf("record %d has an error attribute without an error: %v", i, rec)
		}
		if _, ok := rec["delay"]; ok != (i < 2) {
			t.Errorf("record %d: delay present = %v, want it only when a retry follows", i, ok)
		}
		a := attempts[i]
		checks := map[string]any{
			"method":          a.Method,
			"host":            a.Host,
			"path":            a.Path,
			"attempt":         float64(a.Number),
			"max_attempts":    float64(a.MaxAttempts),
			"status":          float64(a.StatusCode),
			"code":            a.Code,
			"request_id":      a.RequestID,
			"idempotency_key": a.IdempotencyKey,
			"outcome":         string(a.Outcome),
		}
		if a.Retry {
			checks["delay"] = float64(a.Delay)
		}
		for k, want := range checks {
			if rec[k] != want {
				t.Errorf("record %d: %s = %v, observer saw %v", i, k, rec[k], want)
			}
		}
		if a.Path != "/v1/posts" || a.Code != "PUBLIC_API_POST_CREATE_FAILED" || a.RequestID != "req-7f3" || a.Outcome != OutcomeTransient {
			t.Errorf("attempt %d = %+v", i, a)
		}
		if a.IdempotencyKey == "" || a.IdempotencyKey != attempts[0].IdempotencyKey {
			t.Errorf("attempt %d key %q, want the call's key on every attempt", i, a.IdempotencyKey)
		}
	}
	if attempts[0].Delay <= 0 || attempts[2].Delay != 0 || !attempts[0].Retry || attempts[2].Retry {
		t.Errorf("delays/retry flags wrong: %+v", attempts)
	}
}

func TestLogLevels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  []rtStep
		opts   []Option
		prior  int           // calls made first, their records dropped
		cancel time.Duration // the caller cancels its context after this; 0 for never
		want   []string
	}{
		{"first-try-success", []rtStep{{status: 200}}, nil, 0, 0, []string{"DEBUG"}},
		{"success-after-retries", []rtStep{{status: 503}, {status: 200}}, nil, 0, 0, []string{"WARN", "INFO"}},
		{"permanent 404: the API's answer", []rtStep{{status: 404}}, nil, 0, 0, []string{"INFO"}},
		{"permanent 422 after a retry", []rtStep{{status: 503}, {status: 422}}, nil, 0, 0, []string{"WARN", "INFO"}},
		{"permanent 501: a failed call", []rtStep{{status: 501}}, nil, 0, 0, []string{"ERROR"}},
		{"429 given up", []rtStep{{status: 429, header: http.Header{"Retry-After": {"3600"}}}}, nil, 0, 0, []string{"ERROR"}},
		{"5xx after every retry", []rtStep{{status: 503}, {status: 503}}, nil, 0, 0, []string{"WARN", "ERROR"}},
		{"408 after every retry", []rtStep{{status: 408}, {status: 408}}, nil, 0, 0, []string{"WARN", "ERROR"}},
		// The server says not to retry: Permanent, yet a throttle or a
		// timeout, not an error of the request.
		{"429 not to be retried", []rtStep{{status: 429, header: http.Header{"X-Should-Retry": {"false"}}}}, nil, 0, 0, []string{"ERROR"}},
		{"408 not to be retried", []rtStep{{status: 408, header: http.Header{"Stripe-Should-Retry": {"false"}}}}, nil, 0, 0, []string{"ERROR"}},
		{"network-failure", []rtStep{{err: io.ErrUnexpectedEOF}, {err: io.ErrUnexpectedEOF}}, nil, 0, 0, []string{"WARN", "ERROR"}},
		{"attempt timeouts", []rtStep{{hang: true}}, []Option{WithAttemptTimeout(time.Second)}, 0, 0, []string{"WARN", "ERROR"}},
		// The breaker opened on the first call's 500: the second call is
		// refused locally.
		{"local refusal", []rtStep{{status: 500}}, []Option{WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1})}, 1, 0, []string{"ERROR"}},
		{"canceled by the caller", []rtStep{{hang: true}}, nil, 0, time.Second, []string{"INFO"}},
		// A record ends the call canceled while it waited to retry: its
		// last record said "retrying".
		{"canceled while waiting to retry", []rtStep{{status: 503}, {status: 200}}, []Option{WithBackoff(10*time.Second, 10*time.Second)}, 0, time.Second, []string{"WARN", "INFO"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				rt := &rtScript{steps: tc.steps}
				tr := New(rt, append([]Option{fastRetries, WithMaxRetries(1), WithLogger(logger)}, tc.opts...)...)
				for range tc.prior + 1 {
					buf.Reset()
					ctx, cancel := context.WithCancel(context.Background())
					if tc.cancel > 0 {
						time.AfterFunc(tc.cancel, cancel)
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
					resp, err := tr.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
					}
					cancel()
				}
				recs := logRecords(t, &buf)
				var got []string
				for _, r := range recs {
					got = append(got, r["level"].(string))
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("levels %v, want %v", got, tc.want)
				}
			})
		})
	}
}

func TestLogRedactsURLsInErrors(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	rt := &rtScript{steps: []rtStep{{err: &url.Error{Op: "Get", URL: "https://api.example.com/v1/posts?api_key=topsecret&x=1", Err: io.ErrUnexpectedEOF}}}}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts?api_key=topsecret", nil)
	_, err := New(rt, fastRetries, WithMaxRetries(1), WithLogger(logger)).RoundTrip(req)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error message leaks the query: %v", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v does not unwrap to the cause", err)
	}
	if strings.Contains(buf.String(), "topsecret") {
		t.Errorf("log leaks the query:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `https://api.example.com/v1/posts`) {
		t.Errorf("log lost the redacted URL:\n%s", buf.String())
	}
}

func TestAPIErrorNeverShowsDetails(t *testing.T) {
	e := &APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "Body failed validation", Details: json.RawMessage(`{"email":["user-email@example.com"]}`), RequestID: "r1"}
	if got, want := e.Error(), "400 INVALID_REQUEST: Body failed validation (request_id r1)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAttemptHeader(t *testing.T) {
	rt := &rtScript{steps: []rtStep{{status: 503}, {status: 503}, {status: 200}}}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	resp, err := New(rt, fastRetries, WithAttemptHeader("x-retry-attempt")).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := strings.Join(rt.headers("X-Retry-Attempt"), ","); got != "1/6,2/6,3/6" {
		t.Errorf("attempt headers %q, want 1/6,2/6,3/6", got)
	}
	if req.Header.Get("X-Retry-Attempt") != "" {
		t.Error("caller's request was modified")
	}
	// Off by default.
	rt = &rtScript{steps: []rtStep{{}}}
	req, _ = http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	resp, _ = New(rt).RoundTrip(req)
	resp.Body.Close()
	if h := rt.call(0).header; len(h) != 0 {
		t.Errorf("headers added by default: %v", h)
	}
}

func TestObserverSeesOutcomes(t *testing.T) {
	var mu sync.Mutex
	var outcomes []Outcome
	obs := WithObserver(func(a Attempt) { mu.Lock(); outcomes = append(outcomes, a.Outcome); mu.Unlock() })
	rt := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"0"}}}, {status: 503}, {status: 400}}}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts", nil)
	resp, err := New(rt, fastRetries, obs).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []Outcome{OutcomeThrottled, OutcomeTransient, OutcomePermanent}
	if len(outcomes) != 3 || outcomes[0] != want[0] || outcomes[1] != want[1] || outcomes[2] != want[2] {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Get "https://api.example.com/v1/posts?api_key=x&y=2": EOF`, `Get "https://api.example.com/v1/posts": EOF`},
		{`dial tcp 127.0.0.1:1: connect: connection refused`, `dial tcp 127.0.0.1:1: connect: connection refused`},
		{`what? see https://a.test/x?token=1 and http://b.test/y#frag?k=v end`, `what? see https://a.test/x and http://b.test/y end`},
		{`https://a.test/?`, `https://a.test/`},
		{`no scheme here ?q=1`, `no scheme here ?q=1`},
		{`Get "https://user:pa%40ss@api.example.com:8443/v1?k=1": EOF`, `Get "https://api.example.com:8443/v1": EOF`},
		{`Post "http://token@h.test": EOF`, `Post "http://h.test": EOF`},
		// A password with an '@' left unescaped (a proxy's address as a
		// caller wrote it): the user info runs to the last '@'.
		{"proxyconnect via http://user:p@ss@proxy.test:8080 failed", "proxyconnect via http://proxy.test:8080 failed"},
		{`Get "https://h.test/p?q=a\"b&k=secret": EOF`, `Get "https://h.test/p": EOF`},
		{`https://h.test/a@b?x=1`, `https://h.test/a@b`},
		{"(see https://h.test/x?k=v)\nnext", "(see https://h.test/x)\nnext"},
		{"(see https://h.test/x).", "(see https://h.test/x)."},
		{"'https://h.test/x?k=v' said", "'https://h.test/x' said"},
		// A ' or a ) within a query, or before it, does not end the URL
		// when the query runs on past it.
		{"GET https://www.googleapis.com/youtube/v3/search?part=snippet&fields=items(id,snippet)&key=AIzaSECRET giving up after 1 attempt(s)",
			"GET https://www.googleapis.com/youtube/v3/search giving up after 1 attempt(s)"},
		{`Get "https://acct.table.core.windows.net/Customers?$filter=Name%20eq%20'x'&sig=SECRET": EOF`, `Get "https://acct.table.core.windows.net/Customers": EOF`},
		{`Get "https://acct.table.core.windows.net/Customers()?sv=1&sig=SECRET": EOF`, `Get "https://acct.table.core.windows.net/Customers()": EOF`},
		{"sdk: Get https://acct.table.core.windows.net/Customers()?sv=1&sig=SECRET: EOF", "sdk: Get https://acct.table.core.windows.net/Customers() EOF"}, // the query runs to the space
	} {
		if got := redactURLs(tc.in); got != tc.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A quoted string that ends in an escaped backslash ends there: the
	// next one, a relative URL with a token, is redacted as any.
	if got, want := redactText(`malformed HTTP status code "ab\\"; reopen "/v1/upload?access_token=SECRET": gone`),
		`malformed HTTP status code "ab\\"; reopen "/v1/upload": gone`; got != want {
		t.Errorf("redactText = %q, want %q", got, want)
	}
	u, _ := url.Parse("https://user:pass@api.example.com/v1/posts?api_key=x#f")
	if got := redactURL(&http.Request{URL: u}); got != "https://api.example.com/v1/posts" {
		t.Errorf("redactURL = %q", got)
	}
	// An opaque URL's user info: one missing its slashes, and the opaque
	// form that sets the request line's path verbatim.
	for _, tc := range []struct {
		u    *url.URL
		want string
	}{
		{&url.URL{Scheme: "https", Opaque: "user:pass@api.example.com/v1", RawQuery: "k=secret"}, "https:api.example.com/v1"},
		{&url.URL{Scheme: "https", Host: "api.example.com", Opaque: "//user:pass@api.example.com/v1/a%2Fb"}, "https://api.example.com/v1/a%2Fb"},
		{&url.URL{Scheme: "https", Host: "api.example.com", Opaque: "//api.example.com/v1/a@b"}, "https://api.example.com/v1/a@b"},
		{&url.URL{Scheme: "https", Host: "api.example.com", Opaque: "/v1/a?k=secret"}, "https:/v1/a"},
		// A credential in an opaque path is redacted as in a Path.
		{&url.URL{Scheme: "https", Host: "discord.com", Opaque: "//discord.com/api/webhooks/123/tok-secret"}, "https://discord.com/api/webhooks/123/REDACTED"},
		{&url.URL{Scheme: "https", Host: "discord.com", Opaque: "/api/webhooks/123/tok-secret?wait=true"}, "https:/api/webhooks/123/REDACTED"},
		{&url.URL{Scheme: "https", Opaque: "user:pass@hooks.slack.com/services/T1/B2/slack-secret"}, "https:hooks.slack.com/services/T1/B2/REDACTED"},
	} {
		if got := redactURL(&http.Request{URL: tc.u}); got != tc.want {
			t.Errorf("redactURL(%#v) = %q, want %q", tc.u, got, tc.want)
		}
	}
}

// TestLogOmitsUnknown: a record carries only what is known: no empty code,
// no -1 quota, no zero reset, no error attribute without an error, no
// status without a response.
func TestLogOmitsUnknown(t *testing.T) {
	keysOf := func(rec map[string]any) string {
		var ks []string
		for k := range rec {
			if k != "time" && k != "level" && k != "msg" {
				ks = append(ks, k)
			}
		}
		slices.Sort(ks)
		return strings.Join(ks, ",")
	}
	for _, tc := range []struct {
		name  string
		steps []rtStep
		ctx   func() (context.Context, context.CancelFunc)
		level string
		msg   string
		keys  string
	}{
		{"network error", []rtStep{{err: errReset}}, nil, "ERROR", "resilient: call failed",
			"attempt,duration,error,host,max_attempts,method,outcome,path,stop_reason"},
		{"404 without envelope", []rtStep{{status: 404}}, nil, "INFO", "resilient: call answered with an error",
			"attempt,duration,host,max_attempts,method,outcome,path,status"},
		{"429 with everything", []rtStep{{status: 429, header: http.Header{"Retry-After": {"3600"}, "X-Ratelimit-Limit": {"10"},
			"X-Ratelimit-Remaining": {"0"}, "X-Request-Id": {"r-1"}}, body: `{"error":{"code":"rate_limit_exceeded","message":"slow"}}`}},
			nil, "ERROR", "resilient: call failed",
			"attempt,code,duration,host,max_attempts,method,outcome,path,ratelimit_limit,ratelimit_remaining,ratelimit_reset,request_id,retry_after,status,stop_reason"},
		{"canceled by the caller", []rtStep{{hang: true}}, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Millisecond, cancel)
			return ctx, cancel
		}, "INFO", "resilient: call canceled", "attempt,duration,error,host,max_attempts,method,outcome,path,stop_reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				ctx := context.Background()
				if tc.ctx != nil {
					var cancel context.CancelFunc
					ctx, cancel = tc.ctx()
					defer cancel()
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
				resp, err := New(&rtScript{steps: tc.steps}, WithMaxRetries(0), WithLogger(logger)).RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				recs := logRecords(t, &buf)
				if len(recs) != 1 {
					t.Fatalf("%d records, want 1", len(recs))
				}
				if recs[0]["level"] != tc.level || recs[0]["msg"] != tc.msg {
					t.Errorf("record %v %q, want %s %q", recs[0]["level"], recs[0]["msg"], tc.level, tc.msg)
				}
				if got := keysOf(recs[0]); got != tc.keys {
					t.Errorf("attributes %s, want %s", got, tc.keys)
				}
			})
		})
	}
}

// TestAttemptHeaderNeverCarriesKeys: WithAttemptHeader panics on a name
// that cannot be sent, and on a header that carries idempotency keys:
// under Idempotency-Key every call's first attempt carried the same
// "1/6", so that a host that deduplicates by key answered a new write
// with an earlier one's result, and under X-Idempotency-Key net/http
// itself resent writes after a dead connection, to any host. New panics
// on the header set with WithIdempotencyHeader, whichever comes first.
func TestAttemptHeaderNeverCarriesKeys(t *testing.T) {
	for _, name := range []string{"Idempotency-Key", "idempotency-key", "X-Idempotency-Key", "Bad Name", "X-Try\r\n"} {
		p := mustPanic(t, fmt.Sprintf("WithAttemptHeader(%q) did not panic", name), func() { WithAttemptHeader(name) })
		if msg, _ := p.(string); p != nil && !strings.HasPrefix(msg, "resilient: WithAttemptHeader") {
			t.Errorf("WithAttemptHeader(%q) panicked with %v, want a message naming it", name, p)
		}
	}
	mustPanic(t, "WithAttemptHeader of the idempotency header did not panic", func() {
		New(nil, WithIdempotencyHeader("X-Request-Key"), WithAttemptHeader("x-request-key"))
	})
	mustPanic(t, "WithAttemptHeader before WithIdempotencyHeader of the same header did not panic", func() {
		New(nil, WithAttemptHeader("X-Request-Key"), WithIdempotencyHeader("X-Request-Key"))
	})
	// Per call, where the Transport's header is not known to
	// WithCallOptions, the key wins.
	var got []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Get("X-Request-Key"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	tr := New(base, WithIdempotencyHeader("X-Request-Key"))
	ctx := WithCallOptions(context.Background(), WithAttemptHeader("X-Request-Key"))
	for range 2 {
		resp, err := tr.RoundTrip(newRequest(t, ctx, "POST", "https://api.test/v1/posts", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(got) != 2 || got[0] == got[1] || strings.Contains(got[0], "/") {
		t.Errorf("keys sent %q, want two different generated keys", got)
	}
}

// TestOptionHeadersSpareCredentials: WithAttemptHeader and
// WithIdempotencyHeader panic on a header that carries a credential or
// that net/http writes itself. WithIdempotencyHeader("Authorization")
// took the caller's credential for the call's key: it went to every
// observer, log line and span as Attempt.IdempotencyKey. WithAttemptHeader
// on it replaced the credential with "1/6" in every attempt.
func TestOptionHeadersSpareCredentials(t *testing.T) {
	for _, name := range []string{"Authorization", "proxy-authorization", "Cookie", "X-API-Key", "Host", "Content-Length", "content-type", "Transfer-Encoding", "Connection"} {
		for opt, f := range map[string]func(string) Option{"WithAttemptHeader": WithAttemptHeader, "WithIdempotencyHeader": WithIdempotencyHeader} {
			p := mustPanic(t, fmt.Sprintf("%s(%q) did not panic", opt, name), func() { f(name) })
			if msg, _ := p.(string); p != nil && !strings.HasPrefix(msg, "resilient: "+opt) {
				t.Errorf("%s(%q) panicked with %v, want a message naming it", opt, name, p)
			}
		}
	}
	for _, name := range []string{"X-Request-Id", "X-Retry-Attempt", "Request-Key"} {
		WithAttemptHeader(name)
		WithIdempotencyHeader(name)
	}
}

// The host and path of a request reach its Attempt records, its log
// records and its error bounded: the host's name at 255 bytes (its port
// kept), the path at 8 KiB, each cut at a character's boundary.
func TestAttemptAndErrorBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts collector[Attempt]
		var logs bytes.Buffer
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) { return nil, errReset }),
			WithMaxRetries(1), WithObserver(attempts.add), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		name := strings.Repeat("é", 1<<19)
		path := "/" + strings.Repeat("p", 1<<20)
		req := newRequest(t, context.Background(), http.MethodGet, "http://placeholder/", nil)
		req.URL = &url.URL{Scheme: "https", Host: name + ":8443", Path: path}
		_, err := roundTrip(t, tr, req)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("RoundTrip error %v, want an *Error", err)
		}
		// Escaped: a byte becomes 3 at most.
		if max := len("https://") + 3*(redact.MaxHost+len(":8443")+redact.MaxPath); len(e.URL) > max {
			t.Errorf("Error.URL has %d bytes, want at most %d", len(e.URL), max)
		}
		as := attempts.all()
		if len(as) != 2 {
			t.Fatalf("%d attempts observed, want 2", len(as))
		}
		for _, a := range as {
			if len(a.Host) > redact.MaxHost+len(":8443") || !strings.HasSuffix(a.Host, ":8443") || !strings.HasPrefix(a.Host, "éé") {
				t.Errorf("Attempt.Host has %d bytes (%.10q…), want at most %d, the port kept", len(a.Host), a.Host, redact.MaxHost+len(":8443"))
			}
			if len(a.Path) > redact.MaxPath || !strings.HasPrefix(a.Path, "/pp") {
				t.Errorf("Attempt.Path has %d bytes, want at most %d", len(a.Path), redact.MaxPath)
			}
		}
		for _, r := range logRecords(t, &logs) {
			if h, _ := r["host"].(string); len(h) > redact.MaxHost+len(":8443") {
				t.Errorf("log record's host has %d bytes", len(h))
			}
			if p, _ := r["path"].(string); len(p) > redact.MaxPath {
				t.Errorf("log record's path has %d bytes", len(p))
			}
		}
	})
}

// TestLogLevelCanceledWithCause: a caller that cancels its call with a
// cause (context.WithCancelCause, as servers do when their client goes
// away) canceled it all the same: its records are Info, as WithLogger
// documents for "a call the caller canceled", whether the cancel cuts an
// attempt in flight or the wait before a retry; the cause stays in the
// record's error. A deadline's cut, with a cause too, stays an Error.
func TestLogLevelCanceledWithCause(t *testing.T) {
	errLeft := errors.New("the client went away")
	for _, tc := range []struct {
		name  string
		steps []rtStep
		ctx   func() (context.Context, func())
		want  []string
	}{
		{"in flight", []rtStep{{hang: true}}, func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(time.Second, func() { cancel(errLeft) })
			return ctx, func() { cancel(nil) }
		}, []string{"INFO"}},
		{"waiting to retry", []rtStep{{status: 503}, {status: 200}}, func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(time.Second, func() { cancel(errLeft) })
			return ctx, func() { cancel(nil) }
		}, []string{"WARN", "INFO"}},
		{"deadline with a cause", []rtStep{{hang: true}}, func() (context.Context, func()) {
			return context.WithTimeoutCause(context.Background(), time.Second, errLeft)
		}, []string{"ERROR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				tr := New(&rtScript{steps: tc.steps}, WithBackoff(10*time.Second, 10*time.Second), WithMaxRetries(1), WithLogger(logger))
				ctx, cancel := tc.ctx()
				defer cancel()
				var r Report
				_, err := tr.RoundTrip(newRequest(t, WithReport(ctx, &r), http.MethodGet, "https://api.example.com/v1/posts", nil))
				if !errors.Is(err, errLeft) {
					t.Fatalf("RoundTrip error %v, want the cause %v", err, errLeft)
				}
				var got []string
				for _, rec := range logRecords(t, &buf) {
					got = append(got, rec["level"].(string))
					if rec["outcome"] == string(OutcomeCanceled) && !strings.Contains(fmt.Sprint(rec["error"]), errLeft.Error()) {
						t.Errorf("record %v without the cause", rec)
					}
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("levels %v, want %v", got, tc.want)
				}
				if r.Outcome != OutcomeCanceled {
					t.Errorf("Report.Outcome %q, want %q", r.Outcome, OutcomeCanceled)
				}
			})
		})
	}
}

// TestLogCanceledWaitKeepsKey: the record of a write's call canceled while
// it waits to retry, a record of its last attempt, carries the key that
// attempt was sent with, as the attempt's own record does: the key is what
// ties a write's records together.
func TestLogCanceledWaitKeepsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tr := New(&rtScript{steps: []rtStep{{status: 503}, {status: 201}}}, WithBackoff(10*time.Second, 10*time.Second), WithLogger(logger))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(time.Second, cancel)
		req := newRequest(t, ctx, http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "key-1") // the caller's: the host honors it, the 503 is retried
		if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
			t.Fatalf("RoundTrip error %v, want context.Canceled", err)
		}
		recs := logRecords(t, &buf)
		if len(recs) != 2 || recs[1]["stop_reason"] != string(StopCanceled) {
			t.Fatalf("records %v, want the attempt's and the canceled wait's", recs)
		}
		for i, rec := range recs {
			if rec["idempotency_key"] != "key-1" {
				t.Errorf("record %d: idempotency_key = %v, want %q", i, rec["idempotency_key"], "key-1")
			}
		}
	})
}

// TestAttemptRateLimitUnreadWithoutLimiter: Attempt.RateLimit is what the
// rate limiter read of the response: under WithoutRateLimit, and for a
// partition WithRateLimitKey exempts, it reads nothing, and the field says
// unknown, as its documentation says, even on a 429 with rate-limit
// headers and a Retry-After.
func TestAttemptRateLimitUnreadWithoutLimiter(t *testing.T) {
	for _, opt := range []Option{WithoutRateLimit(), WithRateLimitKey(func(*http.Request) string { return "" })} {
		h := http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "Retry-After": {"1"}}
		var got []Attempt
		tr := New(&rtScript{steps: []rtStep{{status: 429, header: h}}}, opt, WithMaxRetries(0),
			WithObserver(func(a Attempt) { got = append(got, a) }))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1/posts", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := (RateLimitInfo{Limit: -1, Remaining: -1}); len(got) != 1 || got[0].RateLimit != want {
			t.Errorf("Attempt.RateLimit = %+v, want unknown %+v", got, want)
		}
	}
}

// TestNilObserversIgnored: WithObserver(nil) and WithContextObserver(nil)
// add nothing, as their documentation says: the calls go through, and the
// observers given beside them are each called once per attempt.
func TestNilObserversIgnored(t *testing.T) {
	var seen, ctxSeen int
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
	tr := New(s, fastRetries,
		WithObserver(nil), WithContextObserver(nil),
		WithObserver(func(Attempt) { seen++ }),
		WithContextObserver(func(context.Context, Attempt) { ctxSeen++ }),
		WithObserver(nil), WithContextObserver(nil))
	resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || seen != 2 || ctxSeen != 2 {
		t.Errorf("status %d, observer called %d times, context observer %d; want 200, 2 and 2", resp.StatusCode, seen, ctxSeen)
	}
}
