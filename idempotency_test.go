package resilient

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// fastRetries keeps retry waits negligible in tests that do not test time.
var fastRetries = WithBackoff(0, 0)

const createFailed = `{"success":false,"error":{"code":"PUBLIC_API_POST_CREATE_FAILED","message":"Post persistence failed"},"request_id":"r1"}`

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIdempotencyKeySameAcrossAttemptsAndDistinctBetweenCalls(t *testing.T) {
	rt := &rtScript{steps: []rtStep{
		{status: 500, body: createFailed},
		{status: 503},
		{status: 201},
		{status: 500, body: createFailed},
		{status: 201},
	}}
	var observed []string
	tr := New(rt, fastRetries, WithObserver(func(a Attempt) { observed = append(observed, a.IdempotencyKey) }))
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader(`{"content":"hi"}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("call %d: status %d, want 201", i, resp.StatusCode)
		}
		if got := req.Header.Get("Idempotency-Key"); got != "" {
			t.Fatalf("caller's request was modified: Idempotency-Key = %q", got)
		}
	}
	keys := rt.headers("Idempotency-Key")
	if len(keys) != 5 {
		t.Fatalf("server saw %d attempts, want 5", len(keys))
	}
	for _, k := range keys {
		if !uuidV4.MatchString(k) {
			t.Fatalf("key %q is not a UUIDv4", k)
		}
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("first call's keys differ across attempts: %q", keys[:3])
	}
	if keys[3] != keys[4] {
		t.Errorf("second call's keys differ across attempts: %q", keys[3:])
	}
	if keys[0] == keys[3] {
		t.Errorf("two calls share key %q", keys[0])
	}
	if strings.Join(observed, ",") != strings.Join(keys, ",") {
		t.Errorf("observer keys %q, want %q", observed, keys)
	}
}

func TestIdempotencyCallerKeySurvives(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string // header name the caller sets, "" for the context
	}{
		{"header", "Idempotency-Key"},
		{"x-header", "X-Idempotency-Key"},
		{"context", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: 503}, {status: 201}}}
			tr := New(rt, fastRetries)
			ctx := context.Background()
			if tc.header == "" {
				ctx = WithIdempotencyKey(ctx, "post-42")
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			if tc.header != "" {
				req.Header.Set(tc.header, "post-42")
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			name := tc.header
			if name == "" {
				name = "Idempotency-Key"
			}
			for i, k := range rt.headers(name) {
				if k != "post-42" {
					t.Errorf("attempt %d: %s = %q, want post-42", i+1, name, k)
				}
			}
			if tc.header != "" {
				if k := rt.headers("Idempotency-Key"); tc.header != "Idempotency-Key" && k[0] != "" {
					t.Errorf("a second key was added beside the caller's: %q", k[0])
				}
			} else if req.Header.Get("Idempotency-Key") != "" {
				t.Error("caller's request was modified")
			}
			if rt.numCalls() != 2 {
				t.Errorf("server saw %d attempts, want 2", rt.numCalls())
			}
		})
	}
}

func TestIdempotencyNoAutomaticKeyForPutDeleteGet(t *testing.T) {
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodGet} {
		rt := &rtScript{steps: []rtStep{{}}}
		req, _ := http.NewRequest(m, "https://api.example.com/v1/posts/1", nil)
		resp, err := New(rt).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if k := rt.headers("Idempotency-Key")[0]; k != "" {
			t.Errorf("%s got an automatic key %q", m, k)
		}
	}
}

func TestIdempotencyConfigurableHeaderAndMethods(t *testing.T) {
	rt := &rtScript{steps: []rtStep{{}}}
	tr := New(rt, WithIdempotencyHeader("x-idempotency-key"), WithIdempotencyMethods(http.MethodPut))
	for _, m := range []string{http.MethodPut, http.MethodPost} {
		req, _ := http.NewRequest(m, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	keys := rt.headers("X-Idempotency-Key")
	if !uuidV4.MatchString(keys[0]) {
		t.Errorf("PUT: X-Idempotency-Key = %q, want a UUID", keys[0])
	}
	if keys[1] != "" {
		t.Errorf("POST outside the configured methods got key %q", keys[1])
	}
	if k := rt.headers("Idempotency-Key"); k[0] != "" {
		t.Errorf("default header still set: %q", k[0])
	}
}

func TestIdempotencyWithoutKeysWriteNotRetriedAfterSend(t *testing.T) {
	rt := &rtScript{steps: []rtStep{{status: 500, body: createFailed}, {status: 201}}}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
	resp, err := New(rt, fastRetries, WithoutIdempotencyKeys()).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || rt.numCalls() != 1 {
		t.Fatalf("status %d after %d attempts, want 500 after 1", resp.StatusCode, rt.numCalls())
	}
	if k := rt.headers("Idempotency-Key")[0]; k != "" {
		t.Errorf("key %q sent with automatic keys off", k)
	}

	// A 429 was refused before processing: retried even without a key.
	rt = &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"0"}}}, {status: 201}}}
	req, _ = http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
	resp, err = New(rt, fastRetries, WithoutIdempotencyKeys()).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || rt.numCalls() != 2 {
		t.Fatalf("429 path: status %d after %d attempts, want 201 after 2", resp.StatusCode, rt.numCalls())
	}
}

func TestIdempotencyKeyRequiredRetriesExactlyOnce(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Idempotency-Key required"},"request_id":"r"}`
	// PUT is outside the default methods, so it carries no key until the
	// server asks for one.
	for _, tc := range []struct {
		name     string
		opts     []Option
		steps    []rtStep
		attempts int
		status   int
	}{
		{"then-ok", nil, []rtStep{{status: 400, body: required}, {status: 200}}, 2, 200},
		{"asks-twice", nil, []rtStep{{status: 400, body: required}, {status: 400, body: required}, {status: 200}}, 2, 400},
		{"problem", nil, []rtStep{{status: 400, body: `{"type":"https://example.com/probs/idempotency-key-missing","title":"Idempotency-Key is missing","status":400}`, header: http.Header{"Content-Type": {"application/problem+json"}}}, {status: 200}}, 2, 200},
		{"generation-off", []Option{WithoutIdempotencyKeys()}, []rtStep{{status: 400, body: required}, {status: 200}}, 1, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: tc.steps}
			req, _ := http.NewRequest(http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("payload"))
			resp, err := New(rt, append([]Option{fastRetries}, tc.opts...)...).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if rt.numCalls() != tc.attempts || resp.StatusCode != tc.status {
				t.Fatalf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), tc.status, tc.attempts)
			}
			keys := rt.headers("Idempotency-Key")
			if keys[0] != "" {
				t.Errorf("first attempt carried key %q", keys[0])
			}
			if tc.attempts == 2 && !uuidV4.MatchString(keys[1]) {
				t.Errorf("retry carried key %q, want a UUID", keys[1])
			}
			for i := range rt.numCalls() {
				if b := string(rt.call(i).body); b != "payload" {
					t.Errorf("attempt %d body %q, want the same payload", i+1, b)
				}
			}
		})
	}
}

func TestIdempotencyConflictIsPermanent(t *testing.T) {
	for _, tc := range []rtStep{
		{status: 409, body: `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_CONFLICT","message":"Reused key"},"request_id":"r"}`},
		{status: 422, body: `{"type":"https://example.com/idempotency-key-reused","title":"Idempotency-Key reused","status":422}`},
	} {
		rt := &rtScript{steps: []rtStep{tc, {status: 201}}}
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
		resp, err := New(rt, fastRetries).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || rt.numCalls() != 1 {
			t.Errorf("%d: status %d after %d attempts, want no retry", tc.status, resp.StatusCode, rt.numCalls())
		}
	}
}

func TestIdempotencyWriteRetriedAfterNetworkError(t *testing.T) {
	rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 201}}}
	req, _ := http.NewRequest(http.MethodPatch, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
	resp, err := New(rt, fastRetries).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || rt.numCalls() != 2 {
		t.Fatalf("status %d after %d attempts, want 201 after 2", resp.StatusCode, rt.numCalls())
	}
	// Without a key, an error after sending is not retried.
	rt = &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 201}}}
	req, _ = http.NewRequest(http.MethodPatch, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
	if _, err := New(rt, fastRetries, WithoutIdempotencyKeys()).RoundTrip(req); err == nil || rt.numCalls() != 1 {
		t.Fatalf("err %v after %d attempts, want an error after 1", err, rt.numCalls())
	}
}

func TestNewIdempotencyKeyIsUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := newIdempotencyKey()
		if !uuidV4.MatchString(k) {
			t.Fatalf("%q is not a UUIDv4", k)
		}
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}
