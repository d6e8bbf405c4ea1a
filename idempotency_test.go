package resilient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/resilienthttp/resilient/resilienttest"
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

// TestWriteRuleAfterNetworkError: a write that failed after it may have
// been sent is resent only with a key its host honors: named, set by the
// caller, or learned earlier from the host's answers.
func TestWriteRuleAfterNetworkError(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		key  string // the caller's key header, or ""
		want int    // attempts
		stop StopReason
	}{
		{"generated key, unknown host", nil, "", 1, StopUnsafeWrite},
		{"named host", []Option{WithKeyHonoringHosts("api.example.com")}, "", 2, ""},
		{"named host and port", []Option{WithKeyHonoringHosts("API.example.com:443")}, "", 2, ""},
		{"other port named", []Option{WithKeyHonoringHosts("api.example.com:8443")}, "", 1, StopUnsafeWrite},
		{"other host named", []Option{WithKeyHonoringHosts("example.com")}, "", 1, StopUnsafeWrite},
		{"several calls add up", []Option{WithKeyHonoringHosts("a.test"), WithKeyHonoringHosts("api.example.com")}, "", 2, ""},
		{"caller key", nil, "post-7", 2, ""},
		{"no key", []Option{WithoutIdempotencyKeys(), WithKeyHonoringHosts("api.example.com")}, "", 1, StopUnsafeWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 201}}}
			var stops []StopReason
			opts := append([]Option{fastRetries, WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) })}, tc.opts...)
			req, _ := http.NewRequest(http.MethodPatch, "https://api.example.com/v1/posts/1", strings.NewReader("x"))
			if tc.key != "" {
				req.Header.Set("Idempotency-Key", tc.key)
			}
			resp, err := New(rt, opts...).RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if rt.numCalls() != tc.want {
				t.Fatalf("%d attempts (err %v), want %d", rt.numCalls(), err, tc.want)
			}
			if tc.want == 1 && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want the attempt's own error", err)
			}
			if got := stops[len(stops)-1]; got != tc.stop {
				t.Errorf("StopReason = %q, want %q", got, tc.stop)
			}
		})
	}
}

// TestWriteRuleLearnsFromAnswers: after a host's answer shows that it
// honors keys, its writes are resent; the table is per scheme, host and
// port.
func TestWriteRuleLearnsFromAnswers(t *testing.T) {
	rt := &rtScript{steps: []rtStep{
		{status: 409, body: `{"error":"IDEMPOTENCY_CONFLICT","message":"key reused"}`}, // learned
		{err: io.ErrUnexpectedEOF}, // https://api.example.com: resent
		{status: 201},
		{err: io.ErrUnexpectedEOF}, // http://api.example.com: another host
	}}
	tr := New(rt, fastRetries)
	post := func(url string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, _ := post("https://api.example.com/v1/posts"); resp == nil || resp.StatusCode != 409 || rt.numCalls() != 1 {
		t.Fatalf("conflict: %v after %d attempts, want 409 once", resp, rt.numCalls())
	}
	if resp, err := post("https://API.example.com:443/v1/posts"); err != nil || resp.StatusCode != 201 || rt.numCalls() != 3 {
		t.Fatalf("learned host: %v, %v after %d attempts, want 201 after a resend", resp, err, rt.numCalls())
	}
	if _, err := post("http://api.example.com/v1/posts"); err == nil || rt.numCalls() != 4 {
		t.Fatalf("other scheme: err %v after %d attempts, want the error after one", err, rt.numCalls())
	}
}

// TestWriteRuleLearnsFromReads: the answers a host gives to reads tell
// its dialect as well as the answers to writes: after an Aidelly envelope
// on a GET, a write to the host is resent after an ambiguous failure. A
// read's envelope of a shape many APIs share teaches nothing, and neither
// does a Postato envelope, even with one of Postato's own codes
// (plan_inactive, workspace_required): Postato honors keys on POST /posts
// only (see TestPostatoEnvelopeTeachesNothingOfOtherWrites). Nor does an
// idempotency code of any other dialect (a conflict, a key reused): it
// teaches only when answered to a write under a key the Transport drew.
// Before, a read's taught too, and the host's failed writes were resent.
// An Idempotent-Replayed header on a read's answer still teaches.
func TestWriteRuleLearnsFromReads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		read    rtStep
		resends bool
	}{
		{"aidelly", rtStep{status: 404, body: `{"success":false,"error":{"code":"PUBLIC_API_POST_NOT_FOUND","message":"no post"},"request_id":"r"}`}, true},
		{"postato", rtStep{status: 403, body: `{"error":"plan_inactive","message":"no"}`, header: http.Header{"X-Request-Id": {"r"}}}, false},
		{"postato, a code other APIs use", rtStep{status: 404, body: `{"error":"not_found","message":"no"}`}, false},
		{"postato, another", rtStep{status: 403, body: `{"error":"permission_denied","message":"no"}`}, false},
		{"postato, a validation error", rtStep{status: 400, body: `{"error":"INVALID_REQUEST","message":"no"}`}, false},
		{"postato, a rule failed", rtStep{status: 422, body: `{"error":"VALIDATION_FAILED","message":"no"}`}, false},
		{"postato, its own word", rtStep{status: 403, body: `{"error":"workspace_required","message":"no"}`}, false},
		{"shared shape", rtStep{status: 404, body: `{"error":{"code":"not_found_here","message":"no"}}`}, false},
		// A platform error (Dialect "postato", by its origin member).
		{"postato platform error", rtStep{status: 422, body: `{"error":{"origin":"platform","code":"MEDIA_TOO_LARGE","message":"no","retryable":false}}`}, false},
		{"postato platform error, its own word", rtStep{status: 403, body: `{"error":{"origin":"platform","code":"workspace_required","message":"no"}}`}, false},
		{"success", rtStep{status: 200, body: `{"data":[]}`}, false},
		// An Idempotent-Replayed header teaches from a read's answer
		// too: the host speaks of its keys.
		{"replayed header", rtStep{status: 404, body: `{"error":{"code":"not_found_here","message":"no"}}`, header: http.Header{"Idempotent-Replayed": {"true"}}}, true},
		{"replayed header, false", rtStep{status: 404, body: `{"error":{"code":"not_found_here","message":"no"}}`, header: http.Header{"Idempotent-Replayed": {"false"}}}, true},
		// An idempotency code teaches only when answered to a write
		// under a key the Transport drew: a read sent no key, and a
		// code answered to it says nothing of the host's keys (a
		// proxy's, another route's, an echo of a stored error).
		{"stripe idempotency error", rtStep{status: 409, body: `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters","doc_url":"https://stripe.com/docs/error-codes"}}`}, false},
		{"problem+json, the IETF draft's", rtStep{status: 422, header: http.Header{"Content-Type": {"application/problem+json"}}, body: `{"type":"https://developer.example.com/idempotency","title":"Idempotency-Key is already used","status":422}`}, false},
		{"shared shape, key reused", rtStep{status: 422, body: `{"error":{"code":"idempotency_key_reused","message":"no"}}`}, false},
		{"error string, conflict", rtStep{status: 409, body: `{"error":"IDEMPOTENCY_CONFLICT","message":"key reused"}`}, false},
		{"code and message, conflict", rtStep{status: 409, body: `{"code":"IdempotencyKeyMismatch","message":"no"}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{tc.read, {status: 502}, {status: 201}}}
			tr := New(rt, fastRetries)
			req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts/1", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			req, _ = http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			resp, err = tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want, status := 2, 502
			if tc.resends {
				want, status = 3, 201
			}
			if rt.numCalls() != want || resp.StatusCode != status {
				t.Errorf("the write got %d after %d attempts in all, want %d after %d", resp.StatusCode, rt.numCalls(), status, want)
			}
		})
	}
}

// TestWriteRuleKeyHeaderNames: a caller's key under the default or the
// configured name, in any capitalisation, is sent under the configured
// name, and no generated key is added beside it; a caller's key under
// another header than the configured one (an SDK's Idempotency-Key for its
// own API, through a Transport configured for another) is also sent as the
// caller set it, so that the API it was set for still reads it (until
// 2026-12-01 it was removed: Stripe, reading Idempotency-Key alone, stored
// the write the Transport then resent). A caller's X-Idempotency-Key goes
// under the configured name too, unless that is the default: before, it
// went alone, and a host reading Request-Key saw no key and stored the
// resent write twice.
func TestWriteRuleKeyHeaderNames(t *testing.T) {
	for _, tc := range []struct {
		configured, set string
		wantNames       []string
	}{
		{"", "Idempotency-Key", []string{"Idempotency-Key"}},
		{"", "idempotency-key", []string{"Idempotency-Key"}},
		{"", "X-Idempotency-Key", []string{"X-Idempotency-Key"}},
		{"X-Idempotency-Key", "Idempotency-Key", []string{"Idempotency-Key", "X-Idempotency-Key"}},
		{"X-Idempotency-Key", "idempotency-key", []string{"X-Idempotency-Key", "idempotency-key"}},
		{"X-Idempotency-Key", "x-IDEMPOTENCY-key", []string{"X-Idempotency-Key"}},
		{"Request-Key", "Idempotency-Key", []string{"Idempotency-Key", "Request-Key"}},
		{"Request-Key", "request-key", []string{"Request-Key"}},
		{"Request-Key", "X-Idempotency-Key", []string{"Request-Key", "X-Idempotency-Key"}},
		{"Request-Key", "x-idempotency-key", []string{"Request-Key", "x-idempotency-key"}},
		{"Request-Key", "X-IDEMPOTENCY-KEY", []string{"Request-Key", "X-IDEMPOTENCY-KEY"}},
		{"", "x-idempotency-key", []string{"x-idempotency-key"}},
		{"Idempotency-Key", "X-Idempotency-Key", []string{"X-Idempotency-Key"}},
	} {
		t.Run(tc.configured+"/"+tc.set, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: 503}, {status: 201}}}
			opts := []Option{fastRetries}
			if tc.configured != "" {
				opts = append(opts, WithIdempotencyHeader(tc.configured))
			}
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			req.Header[tc.set] = []string{"caller-key"} // as set, not canonicalized
			resp, err := New(rt, opts...).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if rt.numCalls() != 2 {
				t.Fatalf("%d attempts, want 2: a caller's key makes the write resendable", rt.numCalls())
			}
			var want []string
			for _, n := range tc.wantNames {
				want = append(want, n+"=caller-key")
			}
			for i := range 2 {
				h := rt.call(i).header
				var names []string
				for k, v := range h {
					if strings.Contains(strings.ToLower(k), "key") {
						names = append(names, k+"="+strings.Join(v, ","))
					}
				}
				slices.Sort(names)
				if !slices.Equal(names, want) {
					t.Errorf("attempt %d: key headers %q, want %q", i+1, names, want)
				}
			}
			if v := req.Header[tc.set]; len(v) != 1 || v[0] != "caller-key" || len(req.Header) != 1 {
				t.Errorf("caller's header changed: %v", req.Header)
			}
		})
	}
}

// TestKeyHeaderSpelledTwice checks that a caller's key set twice in the
// header map, under two capitalisations with different values, makes the
// same request carry the same key every time it is sent: the first entry in
// byte order, the one net/http writes first over HTTP/1 (taken in the map's
// order, each call drew one of the two at random).
func TestKeyHeaderSpelledTwice(t *testing.T) {
	rt := &rtScript{steps: []rtStep{{status: 201}}}
	tr := New(rt)
	req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
	req.Header["idempotency-key"] = []string{"lower"}
	req.Header["IDEMPOTENCY-KEY"] = []string{"upper"}
	for range 32 {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i, k := range rt.headers("Idempotency-Key") {
		if k != "upper" {
			t.Fatalf("call %d sent the key %q, want %q (the IDEMPOTENCY-KEY entry, first in byte order) on every call", i+1, k, "upper")
		}
	}
}

// TestWriteRuleThroughNestedTransports checks that a Transport given
// another as its base (resilient.New(resilient.NewClient().Transport), a
// careless SDK setup) keeps the write rule: the key the outer one stamped on
// a write to a host not known to honor keys is not the caller's, whose key
// says the host dedupes; the inner one sent it again after a 500, and the
// server stored the write twice. A caller's own key still makes both resend.
func TestWriteRuleThroughNestedTransports(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ctx       func(context.Context) context.Context
		outer     []Option
		header    string // the caller's key header, if any
		wantCalls int
	}{
		{"generated key", nil, nil, "", 1},
		{"custom key header", nil, []Option{WithIdempotencyHeader("Request-Key")}, "", 1},
		{"no retries above", nil, []Option{WithMaxRetries(0)}, "", 1},
		{"cancelable context", func(ctx context.Context) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			return ctx
		}, nil, "", 1},
		{"observed, under a deadline", func(ctx context.Context) context.Context {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			t.Cleanup(cancel)
			return ctx
		}, []Option{WithObserver(func(Attempt) {})}, "", 1},
		{"caller's trace", func(ctx context.Context) context.Context {
			return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{})
		}, nil, "", 1},
		{"caller's key", nil, nil, "caller-key", 2},
		{"caller's key, lower case", nil, nil, "caller-key-lower", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: 500}, {status: 201}}}
			name := "Idempotency-Key"
			if tc.name == "custom key header" {
				name = "Request-Key" // both Transports' key header
			}
			inner := New(rt, WithBackoff(0, 0), WithIdempotencyHeader(name))
			outer := New(inner, append([]Option{WithBackoff(0, 0)}, tc.outer...)...)
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			req := newRequest(t, ctx, http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			switch tc.header {
			case "caller-key":
				req.Header.Set("Idempotency-Key", tc.header)
			case "caller-key-lower":
				req.Header["idempotency-key"] = []string{tc.header}
			}
			resp, err := outer.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if n := rt.numCalls(); n != tc.wantCalls {
				t.Fatalf("the server got %d requests, want %d", n, tc.wantCalls)
			}
			if tc.wantCalls == 1 && resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want the 500 returned", resp.StatusCode)
			}
			if k := rt.headers(name)[0]; k == "" || tc.header != "" && k != tc.header {
				t.Errorf("key sent %q, want the outer Transport's or the caller's", k)
			}
		})
	}
}

func TestWithKeyHonoringHostsPanics(t *testing.T) {
	for _, h := range []string{"", "https://api.test", "api.test/v1", "user@api.test", "a b"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "WithKeyHonoringHosts") {
					t.Errorf("WithKeyHonoringHosts(%q): panic %v, want one naming the option", h, r)
				}
			}()
			WithKeyHonoringHosts(h)
		}()
	}
}

func TestKeyHostsBounded(t *testing.T) {
	k := newKeyHosts(nil)
	for i := range maxKeyHosts + 10 {
		k.learn("https", fmt.Sprintf("H%d.test", i)) // each spelled in upper case
	}
	if n := k.learned.len(); n > maxKeyHosts || n < maxKeyHosts/2 {
		t.Fatalf("table holds %d hosts, want at most %d and at least half", n, maxKeyHosts)
	}
	if !k.isLearned("https", fmt.Sprintf("h%d.test", maxKeyHosts+9)) {
		t.Error("the last host learned was forgotten")
	}
	count := 0
	k.learned.each(func(breakerKey, *struct{}) { count++ })
	if count != k.learned.len() {
		t.Errorf("count %d, table %d", k.learned.len(), count)
	}
	if n := k.names.t.len(); n > maxHostNames {
		t.Errorf("the table of spellings holds %d, want at most %d", n, maxHostNames)
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

// closeAfterPOST is a server that answers GETs and, for a POST, reads the
// request whole, counts it, and closes the connection without answering:
// the write was processed and the client cannot know it.
func closeAfterPOST(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return
		}
		io.Copy(io.Discard, r.Body)
		posts.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &posts
}

// TestWriteRuleHoldsAgainstNetHTTPResend: net/http's Transport resends, on
// its own and inside one RoundTrip, a request with an Idempotency-Key and a
// rewindable body when a reused connection dies after the write. Through
// the Transport, a write to a host not known to honor keys reaches the
// server once, even with WithMaxRetries(0) where the retry loop plays no
// part.
func TestWriteRuleHoldsAgainstNetHTTPResend(t *testing.T) {
	call := func(t *testing.T, rt http.RoundTripper, url string) error {
		t.Helper()
		client := &http.Client{Transport: rt}
		resp, err := client.Get(url) // opens the connection the POST reuses
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"content":"once"}`))
		resp, err = client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	t.Run("plain net/http resends", func(t *testing.T) {
		srv, posts := closeAfterPOST(t)
		base := &http.Transport{}
		defer base.CloseIdleConnections()
		keyed := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("Idempotency-Key", "k")
			return base.RoundTrip(r)
		})
		call(t, keyed, srv.URL)
		if posts.Load() != 2 {
			t.Skipf("net/http sent the POST %d times; this test documents its resend, which this Go version lacks", posts.Load())
		}
	})
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"no retries", []Option{WithMaxRetries(0)}},
		{"default retries", []Option{fastRetries}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, posts := closeAfterPOST(t)
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			var stops []StopReason
			opts := append(tc.opts, WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))
			err := call(t, New(base, opts...), srv.URL)
			if err == nil {
				t.Fatal("the POST succeeded against a server that never answers it")
			}
			if n := posts.Load(); n != 1 {
				t.Fatalf("server processed the POST %d times, want once", n)
			}
			if tc.name == "default retries" && stops[len(stops)-1] != StopUnsafeWrite {
				t.Errorf("StopReason %q, want %q", stops[len(stops)-1], StopUnsafeWrite)
			}
		})
	}
	t.Run("named host may be resent", func(t *testing.T) {
		srv, posts := closeAfterPOST(t)
		base := &http.Transport{}
		defer base.CloseIdleConnections()
		call(t, New(base, fastRetries, WithMaxRetries(1), WithKeyHonoringHosts(strings.TrimPrefix(srv.URL, "http://"))), srv.URL)
		if posts.Load() < 2 {
			t.Fatalf("server saw the POST %d times; a host that honors keys gets it resent", posts.Load())
		}
	})
}

// TestWriteRuleEmptyKeyHeader: an Idempotency-Key or X-Idempotency-Key
// header the caller left empty is no key, for the Transport as for the
// write rule; net/http's Transport, which resends a request on its own
// when the header is merely present, must not see it either. A write to a
// host not known to honor keys reaches the server once.
func TestWriteRuleEmptyKeyHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		set  func(http.Header)
	}{
		{"empty X-Idempotency-Key, generated key", nil, func(h http.Header) { h.Set("X-Idempotency-Key", "") }},
		{"nil X-Idempotency-Key, generated key", nil, func(h http.Header) { h["X-Idempotency-Key"] = nil }},
		{"empty Idempotency-Key, no keys", []Option{WithoutIdempotencyKeys()}, func(h http.Header) { h.Set("Idempotency-Key", "") }},
		{"empty X-Idempotency-Key, no keys", []Option{WithoutIdempotencyKeys()}, func(h http.Header) { h.Set("X-Idempotency-Key", "") }},
		{"empty Idempotency-Key, method without keys", []Option{WithIdempotencyMethods(http.MethodPatch)}, func(h http.Header) { h.Set("Idempotency-Key", "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, posts := closeAfterPOST(t)
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			client := &http.Client{Transport: New(base, append([]Option{fastRetries}, tc.opts...)...)}
			resp, err := client.Get(srv.URL) // opens the connection the POST reuses
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"content":"once"}`))
			tc.set(req.Header)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the POST succeeded against a server that never answers it")
			}
			if n := posts.Load(); n != 1 {
				t.Fatalf("server processed the POST %d times, want once", n)
			}
		})
	}
}

// TestWriteRuleNeverWritten: a write whose attempt net/http reports as never
// written (here, a TLS handshake the server cuts) is resent to any host; a
// base that reports nothing proves nothing. The write trace is carried by
// the attempt's own context when the caller's is never canceled, else by
// a context of its own, composed with the caller's trace if any.
func TestWriteRuleNeverWritten(t *testing.T) {
	addr, conns := tcpServer(t, func(c net.Conn) {
		c.Close() // before the handshake: nothing of the request is read
	})
	url := "https://" + addr + "/v1/posts"
	var callerHooks atomic.Int32
	callerTrace := &httptrace.ClientTrace{GetConn: func(string) { callerHooks.Add(1) }}
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	deadline, cancelDeadline := context.WithTimeout(context.Background(), time.Hour)
	defer cancelDeadline()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		opts []Option
	}{
		{"background", context.Background(), nil},
		{"cancelable", cancelable, nil},
		{"caller's trace", httptrace.WithClientTrace(context.Background(), callerTrace), nil},
		{"no deadline", context.Background(), []Option{WithMaxElapsed(0)}},
		{"caller's deadline", deadline, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns.Store(0)
			callerHooks.Store(0)
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			var stops []StopReason
			opts := append([]Option{fastRetries, WithMaxRetries(2), WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) })}, tc.opts...)
			tr := New(base, opts...)
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodPost, url, strings.NewReader("x"))
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatal("RoundTrip succeeded against a server that cuts every handshake")
			}
			if n := conns.Load(); n != 3 {
				t.Errorf("%d connections for a write never written, want 3 (one per attempt)", n)
			}
			if len(stops) != 3 || stops[2] != StopMaxAttempts {
				t.Errorf("stop reasons %q, want max_attempts on the third", stops)
			}
			if want := int32(3); tc.name == "caller's trace" && callerHooks.Load() != want {
				t.Errorf("the caller's trace saw %d connections asked for, want %d", callerHooks.Load(), want)
			}
		})
	}

	// The same error from a base that tells nothing of the write.
	rt := &rtScript{steps: []rtStep{{err: io.EOF}, {status: 201}}}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
	if _, err := New(rt, fastRetries).RoundTrip(req); err == nil || rt.numCalls() != 1 {
		t.Errorf("err %v after %d attempts; want the error after one", err, rt.numCalls())
	}
}

// TestWriteTraceReused: the write trace of an unproven write is made once
// for the Transport's pooled attempt state and reused by the attempts of
// later calls; what one attempt's base reported never counts for another.
// A write whose connection was got is not resent; one whose connection was
// asked for and never got is, whatever the attempts before it reported.
// (The base is net/http's Transport itself: through any other, the trace
// proves nothing, see TestWriteProofAbandoningBase.)
func TestWriteTraceReused(t *testing.T) {
	addr, _ := tcpServer(t, func(c net.Conn) {
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.Copy(io.Discard, req.Body) // the write, read
		}
		c.Close() // unanswered
	})
	var got atomic.Bool    // whether the attempt gets a connection
	var calls atomic.Int32 // its dials: one per attempt
	base := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		calls.Add(1)
		if !got.Load() {
			return nil, errors.New("no connection") // proves nothing unsent by itself
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), deadline} {
		tr := New(base, fastRetries, WithMaxRetries(2))
		for i, written := range []bool{true, false, true, true, false, false, true} {
			got.Store(written)
			calls.Store(0)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://api.example.com/v1/posts", strings.NewReader("x"))
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatalf("call %d succeeded; every attempt fails", i)
			}
			want := int32(3) // never written: resent up to WithMaxRetries
			if written {
				want = 1
			}
			if n := calls.Load(); n != want {
				t.Errorf("call %d (written %v): %d attempts, want %d", i, written, n, want)
			}
		}
	}
}

// TestWriteRuleStalledHTTP2Write: over HTTP/2, a request's headers are
// written by a goroutine of net/http's own, which RoundTrip does not wait
// for when the attempt's deadline fires. A write stalled on its connection
// (a full send buffer) when the attempt timeout fires goes out later, and
// the server processes it: that attempt was not "never written", and a
// write to a host not known to honor keys is not resent.
func TestWriteRuleStalledHTTP2Write(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var posts atomic.Int32
		var h2c http.Protocols
		h2c.SetUnencryptedHTTP2(true)
		srv := &http.Server{Protocols: &h2c, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				posts.Add(1)
				w.WriteHeader(http.StatusCreated)
			}
		})}
		ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
		go srv.Serve(ln)
		defer srv.Close()
		var stall atomic.Int64 // how long the connection's next write waits before it goes out
		base := &http.Transport{Protocols: &h2c, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			select {
			case ln.conns <- server:
				return &stallingConn{Conn: client, stall: &stall}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}
		defer base.CloseIdleConnections()
		var stops []StopReason
		client := &http.Client{Transport: New(base, fastRetries, WithAttemptTimeout(time.Second),
			WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))}
		resp, err := client.Get("http://api.test/v1/posts") // opens the connection
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}

		stall.Store(int64(1500 * time.Millisecond)) // the POST's headers leave after its attempt timed out
		req, _ := http.NewRequest(http.MethodPost, "http://api.test/v1/posts/1/publish", nil)
		if resp, err = client.Do(req); err == nil {
			resp.Body.Close()
			t.Error("the POST succeeded: its attempt timed out, and a resend reached the server")
		} else if !errors.Is(err, ErrAttemptTimeout) {
			t.Errorf("err = %v, want the attempt timeout", err)
		}
		time.Sleep(5 * time.Second) // the stalled write goes out
		synctest.Wait()
		if n := posts.Load(); n != 1 {
			t.Fatalf("server processed the POST %d times, want once", n)
		}
		if got := stops[len(stops)-1]; got != StopUnsafeWrite {
			t.Errorf("StopReason = %q, want %q", got, StopUnsafeWrite)
		}
	})
}

// TestWriteRuleHTTP2GoAway: a GOAWAY whose last stream ID covers a
// request's stream says that the server may have processed it (RFC 9113,
// 6.8), whatever its error code or debug data: net/http's error for it
// names the code (here REFUSED_STREAM) and quotes the debug data, and
// neither proves the write unprocessed as a stream reset with
// REFUSED_STREAM does. A write to a host not known to honor keys is not
// resent.
func TestWriteRuleHTTP2GoAway(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  uint32
		debug string
	}{
		{"code REFUSED_STREAM", 0x7, ""},
		{"debug data", 0x0, "stream error: stream ID 1; REFUSED_STREAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var posts atomic.Int32
				var h2c http.Protocols
				h2c.SetUnencryptedHTTP2(true)
				base := &http.Transport{Protocols: &h2c, DialContext: func(context.Context, string, string) (net.Conn, error) {
					client, server := net.Pipe()
					go goAwayAfterHeaders(server, tc.code, tc.debug, &posts)
					return client, nil
				}}
				defer base.CloseIdleConnections()
				var stops []StopReason
				tr := New(base, fastRetries, WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))
				req, _ := http.NewRequest(http.MethodPost, "http://api.test/v1/posts/1/publish", nil)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the POST succeeded against a server that answers none")
				}
				synctest.Wait()
				if n := posts.Load(); n != 1 {
					t.Fatalf("server processed the POST %d times, want once (err %v)", n, err)
				}
				if got := stops[len(stops)-1]; got != StopUnsafeWrite {
					t.Errorf("StopReason = %q, want %q", got, StopUnsafeWrite)
				}
			})
		})
	}
}

// goAwayAfterHeaders serves c as an HTTP/2 server that processes the first
// request whose headers it reads (posts counts it), then sends a GOAWAY
// with that request's stream as the last stream ID, code and debug, and
// closes the connection without answering.
func goAwayAfterHeaders(c net.Conn, code uint32, debug string, posts *atomic.Int32) {
	defer c.Close()
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		b := make([]byte, 9, 9+len(payload))
		b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		b[3], b[4] = typ, flags
		binary.BigEndian.PutUint32(b[5:], stream)
		return append(b, payload...)
	}
	type header struct {
		typ, flags byte
		stream     uint32
	}
	frames := make(chan header, 64)
	go func() { // reads the client's preface and frames
		defer close(frames)
		if _, err := io.ReadFull(c, make([]byte, len(http2Preface))); err != nil {
			return
		}
		h := make([]byte, 9)
		for {
			if _, err := io.ReadFull(c, h); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, c, int64(h[0])<<16|int64(h[1])<<8|int64(h[2])); err != nil {
				return
			}
			select {
			case frames <- header{h[3], h[4], binary.BigEndian.Uint32(h[5:]) &^ (1 << 31)}:
			default: // the server stopped reading them
			}
		}
	}()
	const settings, headers, goAway = 0x4, 0x1, 0x7
	c.Write(frame(settings, 0, 0, nil))
	for f := range frames {
		switch f.typ {
		case settings:
			if f.flags&1 == 0 {
				c.Write(frame(settings, 1, 0, nil)) // ACK
			}
		case headers:
			posts.Add(1)
			p := binary.BigEndian.AppendUint32(nil, f.stream)
			p = binary.BigEndian.AppendUint32(p, code)
			c.Write(frame(goAway, 0, 0, append(p, debug...)))
			return
		}
	}
}

// http2Preface is the client connection preface of HTTP/2 (RFC 9113, 3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// pipeListener is a net.Listener of the server ends of in-memory
// connections, which a test's dialer sends to conns.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// stallingConn is a connection whose next write, once stall is set, waits
// that long before it goes out, as a write to a full send buffer does.
type stallingConn struct {
	net.Conn
	stall *atomic.Int64 // nanoseconds
}

func (c *stallingConn) Write(p []byte) (int, error) {
	if d := c.stall.Swap(0); d > 0 {
		time.Sleep(time.Duration(d))
	}
	return c.Conn.Write(p)
}

// TestKeyedHeader checks the header of an attempt that carries the call's
// key: the caller's entries copied, the caller's key under another
// spelling dropped, the key under the configured name (lower-cased for an
// unproven write under a name net/http knows), and no value array shared
// with the caller's header.
func TestKeyedHeader(t *testing.T) {
	tests := []struct {
		name     string
		h        http.Header
		unproven bool
		want     http.Header
	}{
		{DefaultIdempotencyHeader, nil, false, http.Header{"Idempotency-Key": {"k"}}},
		{DefaultIdempotencyHeader, http.Header{}, true, http.Header{"idempotency-key": {"k"}}},
		{DefaultIdempotencyHeader, http.Header{"Content-Type": {"application/json"}, "Accept": {"a", "b"}}, false,
			http.Header{"Content-Type": {"application/json"}, "Accept": {"a", "b"}, "Idempotency-Key": {"k"}}},
		{DefaultIdempotencyHeader, http.Header{"Idempotency-Key": {"caller's"}, "idempotency-key": {"lower"}, "X-Idempotency-Key": {"x"}, "Foo": nil}, true,
			http.Header{"idempotency-key": {"k"}, "x-idempotency-key": {"x"}, "Foo": nil}},
		{DefaultIdempotencyHeader, http.Header{"X-Idempotency-Key": {"x"}, "x-idempotency-key": {"y", "z"}, "A": {"1"}}, true,
			http.Header{"idempotency-key": {"k"}, "x-idempotency-key": {"x", "y", "z"}, "A": {"1"}}},
		{DefaultIdempotencyHeader, http.Header{"X-Idempotency-Key": {"x"}, "x-idempotency-key": {"y"}}, false,
			http.Header{"Idempotency-Key": {"k"}, "X-Idempotency-Key": {"x"}, "x-idempotency-key": {"y"}}},
		{"X-Idempotency-Key", http.Header{"X-Idempotency-Key": {"x"}, "Idempotency-Key": {"d"}, "User-Agent": nil}, true,
			http.Header{"x-idempotency-key": {"k"}, "User-Agent": nil}},
		{"X-Idempotency-Key", http.Header{"X-Idempotency-Key": {"x"}}, false, http.Header{"X-Idempotency-Key": {"k"}}},
		{DefaultIdempotencyHeader, http.Header{"X-Idempotency-Key": {""}, "A": {"1"}}, true, http.Header{"idempotency-key": {"k"}, "A": {"1"}}},
		{DefaultIdempotencyHeader, http.Header{"X-Idempotency-Key": {""}, "A": {"1"}}, false,
			http.Header{"Idempotency-Key": {"k"}, "X-Idempotency-Key": {""}, "A": {"1"}}},
		{"X-Custom-Key", http.Header{"X-Custom-Key": {"c"}, "Idempotency-Key": {"d"}, "A": {"1"}}, true,
			http.Header{"X-Custom-Key": {"k"}, "A": {"1"}}},
	}
	for i, tt := range tests {
		tr := New(nil, WithIdempotencyHeader(tt.name))
		c := &call{t: tr, cfg: &tr.cfg, req: &http.Request{Header: tt.h}, key: "k"}
		nv := 1
		for _, vv := range tt.h {
			nv += len(vv)
		}
		// Without room, with too little, with just enough.
		for _, spare := range [][]string{nil, make([]string, nv-1), make([]string, nv)} {
			got := c.keyedHeader(tt.unproven, spare)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%d: keyedHeader(%v, %d spare) with %s = %v, want %v", i, tt.unproven, len(spare), tt.name, got, tt.want)
			}
			for k, vv := range got {
				if len(vv) > 0 && len(tt.h[k]) > 0 && &vv[0] == &tt.h[k][0] {
					t.Errorf("%d: %s shares its values with the caller's header", i, k)
				}
				if len(vv) > 0 && cap(vv) != len(vv) {
					t.Errorf("%d: %s may grow into another entry's values", i, k)
				}
			}
			want := 3.0 // map, its group, values
			if len(spare) >= nv {
				want = 2
			}
			if n := testing.AllocsPerRun(100, func() { c.keyedHeader(tt.unproven, spare) }); n > want {
				t.Errorf("%d: keyedHeader with %d spare allocates %v times, want at most %v", i, len(spare), n, want)
			}
		}
	}
}

// TestKeyInUseIsRetried: Stripe's 409 idempotency_key_in_use (the same key
// still being processed) is retried with the same key; a key reused for
// another payload is not.
func TestKeyInUseIsRetried(t *testing.T) {
	rt := &rtScript{steps: []rtStep{
		{status: 409, body: `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"in use"}}`},
		{status: 200},
	}}
	resp := postKeyed(t, New(rt, fastRetries), "https://api.stripe.test/v1/charges", "charge-1")
	if resp.StatusCode != 200 || rt.numCalls() != 2 || strings.Join(rt.headers("Idempotency-Key"), ",") != "charge-1,charge-1" {
		t.Errorf("status %d after %d attempts, keys %q; want 200 after 2 with the same key", resp.StatusCode, rt.numCalls(), rt.headers("Idempotency-Key"))
	}
}

// TestDrawnKeysStayPut checks the keys a Transport draws into its
// attempts' extras (drawKey), whose strings share that memory: under
// concurrent calls, each is a distinct UUIDv4, and the string the base
// kept still reads, after every call has ended, as it did when the request
// was sent (copied then). (With an observer, keys get strings of their own:
// the case without one is the one under test.)
func TestDrawnKeysStayPut(t *testing.T) {
	const workers, each = 16, 50
	var mu sync.Mutex
	sent := map[*http.Request]string{} // a copy of each key as sent
	var kept []string                  // the strings themselves
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		var key string
		for k, v := range req.Header {
			// (A key to a host not known to honor keys is sent under a
			// name net/http does not canonicalize: see keyedHeader.)
			if strings.EqualFold(k, "Idempotency-Key") && len(v) == 1 {
				key = strings.Clone(v[0])
			}
		}
		mu.Lock()
		sent[req] = key
		kept = append(kept, req.Header[hiddenKeyName("Idempotency-Key", true)]...)
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusCreated, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	tr := New(base)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if len(kept) != workers*each || len(sent) != workers*each {
		t.Fatalf("%d keys observed, %d sent; want %d", len(kept), len(sent), workers*each)
	}
	received := map[string]bool{}
	for _, k := range sent {
		received[k] = true
	}
	seen := map[string]bool{}
	for _, k := range kept {
		if !uuidV4.MatchString(k) {
			t.Fatalf("kept key %q is not a UUIDv4", k)
		}
		if seen[k] {
			t.Fatalf("key %q drawn twice", k)
		}
		seen[k] = true
		if !received[k] {
			t.Fatalf("kept key %q is not one that was sent: its bytes changed", k)
		}
	}
}

// TestDrawnKeyHome checks where a drawn key's bytes live: in the attempt's
// extras, beside the request copy the base receives, when nothing observes
// the Transport's attempts; in a string of their own when an observer
// does, which may keep Attempt.IdempotencyKey past the call.
func TestDrawnKeyHome(t *testing.T) {
	var x attemptExtras
	off := uintptr(unsafe.Pointer(&x.key)) - uintptr(unsafe.Pointer(&x.db.req))
	for _, observed := range []bool{false, true} {
		var inExtras bool
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			for _, v := range req.Header {
				if len(v) == 1 && uuidV4.MatchString(v[0]) {
					inExtras = unsafe.Pointer(unsafe.StringData(v[0])) == unsafe.Add(unsafe.Pointer(req), off)
				}
			}
			return &http.Response{StatusCode: http.StatusCreated, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		var opts []Option
		if observed {
			opts = append(opts, WithObserver(func(Attempt) {}))
		}
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
		resp, err := New(base, opts...).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if inExtras == observed {
			t.Errorf("observed %v: key in the attempt's extras = %v, want %v", observed, inExtras, !observed)
		}
	}
}

// TestWriteRuleRefusedKeysTeachNothing: a code that speaks of idempotency
// to say that the host does not take keys (idempotency_not_supported,
// IDEMPOTENCY_KEY_NOT_SUPPORTED, request_not_idempotent, …) is no sign that it deduplicates by
// key: a later write to the host is not resent after a 502. A conflict
// still is one.
func TestWriteRuleRefusedKeysTeachNothing(t *testing.T) {
	for _, tc := range []struct {
		body    string
		resends bool
	}{
		{`{"error":{"code":"idempotency_not_supported","message":"This route does not accept Idempotency-Key"}}`, false},
		{`{"error":{"code":"IDEMPOTENCY_KEY_NOT_SUPPORTED","message":"no"}}`, false},
		{`{"error":{"code":"idempotency_not_supported_for_stream","message":"no"}}`, false},
		{`{"error":"idempotency-key-not-allowed","message":"no"}`, false},
		{`{"code":"IdempotencyKeyUnsupported","message":"no"}`, false},
		{`{"error":{"code":"request_not_idempotent","message":"no"}}`, false},
		{`{"error":{"code":"NON_IDEMPOTENT_OPERATION","message":"no"}}`, false},
		{`{"error":{"code":"idempotency_not_implemented","message":"no"}}`, false},
		{`{"error":{"code":"idempotency_key_reused","message":"no"}}`, true},
	} {
		rt := &rtScript{steps: []rtStep{{status: 400, body: tc.body}, {status: 502}, {status: 201}}}
		tr := New(rt, fastRetries)
		for range 2 {
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		want := 2
		if tc.resends {
			want = 3
		}
		if n := rt.numCalls(); n != want {
			t.Errorf("after %s: %d attempts in all, want %d", tc.body, n, want)
		}
	}
}

// TestKeyHeldByLostAttemptIsRetried: a keyed write resent after its
// attempt was lost (the connection broke, or the attempt timed out, after
// it may have been sent) may find the server still processing that
// attempt, which holds the key: each dialect then answers 409 with its
// conflict code (the IETF Idempotency-Key draft's answer, and
// resilienttest's). The resend carries the same key and the same body, so
// the conflict cannot be a key reused for another payload: the write is
// retried with the same key, and gets the first attempt's answer, rather
// than returning a 409 whose documented remedy (a new key) would write
// twice. A 409 that follows an attempt the server answered is returned, and
// so is one whose code names a state (the post is already canceled).
func TestKeyHeldByLostAttemptIsRetried(t *testing.T) {
	inFlight := []string{
		`{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_CONFLICT","message":"A request with this key is still being processed"},"request_id":"r"}`,
		`{"error":{"code":"conflict","message":"A request with this key is still being processed"}}`,
		`{"error":"CONFLICT","message":"A request with this key is still being processed"}`,
	}
	for _, body := range inFlight {
		for _, tc := range []struct {
			name  string
			first rtStep
			want  int // attempts
			code  int // final status
		}{
			{"after a lost attempt", rtStep{err: io.ErrUnexpectedEOF}, 3, 201},
			{"after an attempt timeout", rtStep{err: fmt.Errorf("%w after 1s", ErrAttemptTimeout)}, 3, 201},
			{"after an answer", rtStep{status: 503}, 2, 409},
		} {
			t.Run(tc.name+" "+body[:20], func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{tc.first, {status: 409, body: body}, {status: 201}}}
				resp := postKeyed(t, New(rt, fastRetries), "https://api.example.com/v1/posts", "post-7")
				if resp.StatusCode != tc.code || rt.numCalls() != tc.want {
					t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, rt.numCalls(), tc.code, tc.want)
				}
				if keys := strings.Join(rt.headers("Idempotency-Key"), ","); keys != strings.Repeat("post-7,", tc.want-1)+"post-7" {
					t.Errorf("keys %q, want post-7 on every attempt", keys)
				}
			})
		}
	}
	rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF},
		{status: 409, body: `{"success":false,"error":{"code":"PUBLIC_API_POST_CANCEL_INVALID_STATE","message":"Post is already canceled"},"request_id":"r"}`},
		{status: 200}}}
	resp := postKeyed(t, New(rt, fastRetries), "https://api.example.com/v1/posts/1/cancel", "cancel-1")
	if resp.StatusCode != 409 || rt.numCalls() != 2 {
		t.Errorf("invalid state: status %d after %d attempts, want 409 after 2", resp.StatusCode, rt.numCalls())
	}

	// The rule is the default decision: a Classifier gets Transient as
	// def, and may say otherwise.
	for _, tc := range []struct {
		name  string
		class func(def Class) Class
		want  int // attempts
		code  int
	}{
		{"a Classifier that keeps def", func(def Class) Class { return def }, 3, 201},
		{"a Classifier that says Permanent", func(def Class) Class { return Permanent }, 2, 409},
	} {
		var defs []Class
		rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 409, body: inFlight[0]}, {status: 201}}}
		tr := New(rt, fastRetries, WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
			if resp != nil && resp.StatusCode == http.StatusConflict {
				defs = append(defs, def)
				return tc.class(def)
			}
			return def
		}))
		resp := postKeyed(t, tr, "https://api.example.com/v1/posts", "post-8")
		if resp.StatusCode != tc.code || rt.numCalls() != tc.want || len(defs) != 1 || defs[0] != Transient {
			t.Errorf("%s: status %d after %d attempts, the Classifier given %v; want %d after %d, given Transient", tc.name, resp.StatusCode, rt.numCalls(), defs, tc.code, tc.want)
		}
	}
}

// TestKeyHeldNotRetriedAgainstServersNo: a 409 after a lost attempt of a
// keyed write whose server says explicitly that it is not to be retried
// (the envelope's "retryable": false, Stripe-Should-Retry or
// X-Should-Retry: false, the strongest words of the precedence) is
// returned at once: the key is not held, the conflict is final (Altyaa's
// "conflict": a duplicate slug). It was retried as a key held by the lost
// attempt, 5 times with backoff, against the server's word.
func TestKeyHeldNotRetriedAgainstServersNo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
	}{
		{"retryable false", nil, `{"error":{"code":"conflict","message":"duplicate slug","retryable":false}}`},
		{"retryable false, no code", nil, `{"message":"duplicate slug","retryable":false}`},
		{"X-Should-Retry false", http.Header{"X-Should-Retry": {"false"}}, `{"error":{"code":"conflict","message":"duplicate slug"}}`},
		{"Stripe-Should-Retry false", http.Header{"Stripe-Should-Retry": {"false"}}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 409, header: tc.header, body: tc.body}}}
			resp := postKeyed(t, New(rt, fastRetries), "https://api.example.com/v1/posts", "post-9")
			if resp.StatusCode != 409 || rt.numCalls() != 2 {
				t.Errorf("status %d after %d attempts, want the 409 after 2", resp.StatusCode, rt.numCalls())
			}
		})
	}
}

// TestIdempotencyHeaderInvalidNamePanics: WithIdempotencyHeader panics on
// a name that is not a valid header name, as on an empty one, naming the
// option. It accepted it: reads went through and every write that got a
// key failed later, as the caller's mistake, with net/http's "invalid
// header field name".
func TestIdempotencyHeaderInvalidNamePanics(t *testing.T) {
	for _, name := range []string{"", "Idempotency Key", "X-Key:", "X-Key\r\n"} {
		p := mustPanic(t, fmt.Sprintf("WithIdempotencyHeader(%q) did not panic", name), func() { WithIdempotencyHeader(name) })
		if msg, _ := p.(string); p != nil && !strings.HasPrefix(msg, "resilient: WithIdempotencyHeader") {
			t.Errorf("WithIdempotencyHeader(%q) panicked with %v, want a message naming it", name, p)
		}
	}
}

// postKeyed sends through rt a POST to url with a small body and the
// Idempotency-Key key, and returns its response, body closed.
func postKeyed(t *testing.T, rt http.RoundTripper, url, key string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("payload"))
	req.Header.Set("Idempotency-Key", key)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestWriteRuleForgetsHostWhoseCopiesBothCreate: a host learned to
// deduplicate by key (its answer was a replay) gets two hedged copies of a
// write under the caller's key, and answers both with a success that is no
// replay: two creates for one key, which only a host that ignores keys
// answers (one that honors them answers the second copy with a 409 while
// the first holds the key, or with a replay). The host is forgotten: its
// next write, under an automatic key, failed with a 500, is returned, not
// resent. Before, it stayed learned, and every failed write to it could be
// stored twice.
func TestWriteRuleForgetsHostWhoseCopiesBothCreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		replayed := http.Header{"Idempotent-Replayed": {"true"}}
		rt := &rtScript{steps: []rtStep{
			{status: 201, header: replayed},                                           // learned
			{status: 201, before: func(req *http.Request) { <-req.Context().Done() }}, // the attempt, answered after its copy won
			{status: 201}, // its copy
			{status: 500}, // the next write: returned
			{status: 201},
		}}
		tr := New(rt, fastRetries, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		for i, want := range []int{201, 201, 500} {
			ctx := context.Background()
			if i == 1 {
				ctx = WithIdempotencyKey(ctx, "post-1") // hedged on the caller's word
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if err != nil || resp.StatusCode != want {
				t.Fatalf("write %d: %v, %v; want %d", i, resp, err, want)
			}
			resp.Body.Close()
			synctest.Wait()
		}
		if n := rt.numCalls(); n != 4 {
			t.Errorf("%d requests, want 4: the last write once", n)
		}
	})
}

// TestWriteRuleServerAsksForRetry: a write whose answer asks for a retry,
// a 503 with Retry-After, a 500 with Stripe-Should-Retry or X-Should-Retry
// true, a 502 or 504 from a proxy (whose upstream may have processed it),
// is returned after one attempt to a host not known to honor keys: the
// server may have processed it, and a plain client sends it once. Only a
// 429 proves it was not.
func TestWriteRuleServerAsksForRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		step rtStep
		want int
	}{
		{"503 Retry-After", rtStep{status: 503, header: http.Header{"Retry-After": {"1"}}}, 1},
		{"500 Stripe-Should-Retry", rtStep{status: 500, header: http.Header{"Stripe-Should-Retry": {"true"}}}, 1},
		{"500 X-Should-Retry", rtStep{status: 500, header: http.Header{"X-Should-Retry": {"true"}}}, 1},
		{"502 proxy", rtStep{status: 502, body: "<html>Bad Gateway</html>"}, 1},
		{"504 proxy", rtStep{status: 504}, 1},
		{"429 Retry-After", rtStep{status: 429, header: http.Header{"Retry-After": {"0"}}}, 2},
	} {
		synctest.Test(t, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{tc.step, {status: 201}}}
			req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
			resp, err := New(rt, fastRetries).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if n := rt.numCalls(); n != tc.want {
				t.Errorf("%s: %d attempts, want %d", tc.name, n, tc.want)
			}
		})
	}
}

// TestHedgingWritesOnlyOnTheCallersWord: a keyed write is hedged only to a
// host named with WithKeyHonoringHosts or under a key the caller set, not
// to a host learned from its answers. A hedge sends the write twice with
// no failure to recover from, and a host that stopped deduplicating (a
// deploy rolled back) gives no answer that says so: its copies are
// canceled once one answers. Before, every slow write to a learned host
// that ignored keys by then was stored twice, where a plain client stores
// it once; a write that fails is still resent to it (the write rule).
func TestHedgingWritesOnlyOnTheCallersWord(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		ctx   context.Context
		sends int
	}{
		{"learned", nil, context.Background(), 1},
		{"named", []Option{WithKeyHonoringHosts("api.example.com")}, context.Background(), 2},
		{"caller's key", nil, WithIdempotencyKey(context.Background(), "post-1"), 2},
	} {
		synctest.Test(t, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{
				{status: 201, header: http.Header{"Idempotent-Replayed": {"true"}}}, // learned
				{status: 201, before: func(*http.Request) { time.Sleep(100 * time.Millisecond) }},
				{status: 201},
			}}
			tr := New(rt, fastRetries, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
			if len(tc.opts) > 0 {
				tr = New(rt, append([]Option{fastRetries, WithHedging(Hedging{Delay: 10 * time.Millisecond})}, tc.opts...)...)
			}
			for i, ctx := range []context.Context{context.Background(), tc.ctx} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 201 {
					t.Fatalf("write %d: %v, %v", i, resp, err)
				}
				resp.Body.Close()
				synctest.Wait()
			}
			if n := rt.numCalls() - 1; n != tc.sends {
				t.Errorf("%s: the slow write sent %d times, want %d", tc.name, n, tc.sends)
			}
		})
	}
}

// TestKeyRequiredBoundedWork: reading whether a 400's message says a key
// is required costs a bounded number of allocations whatever the message a
// hostile server writes: a replacer was made for each of its sentences, 65
// thousand allocations and 8 MB for 64 KiB of "a. ", and a string for each
// sentence naming idempotency with a hyphen.
func TestKeyRequiredBoundedWork(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("a. ", 22<<10),
		strings.Repeat("idempotency-key. ", 4<<10),
	} {
		e := &APIError{StatusCode: http.StatusBadRequest, Message: msg}
		if n := testing.AllocsPerRun(3, func() { isKeyRequired(e) }); n > 8 {
			t.Errorf("isKeyRequired of %d bytes (%.20q…) allocates %v times, want 8 at most", len(msg), msg, n)
		}
	}
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"Idempotency-Key is missing", true},
		{"This operation requires an idempotency_key.", true},
		{"currency is required. Idempotency is not guaranteed", false},
		{"the idempotency token is required; retry", true},
	} {
		if got := isKeyRequired(&APIError{StatusCode: http.StatusBadRequest, Message: tc.msg}); got != tc.want {
			t.Errorf("isKeyRequired(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}

// TestNestedTransportNoHedgedWriteToLearnedHost: a write is hedged only on
// the caller's word (a host named, or a key the caller set), not to a host
// only learned to deduplicate by key, which may stop doing so without
// saying it. Through nested Transports (an outer one over an SDK's client
// that hedges), the key the outer one drew for a write to a host it had
// learned was taken by the inner one for the caller's word, and the inner
// one hedged the write: two requests of it where one Transport sends one.
func TestNestedTransportNoHedgedWriteToLearnedHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{
			{status: 201, header: http.Header{"Idempotent-Replayed": {"true"}}}, // learned by both
			{status: 201, before: func(*http.Request) { time.Sleep(30 * time.Millisecond) }},
			{status: 201}, // a copy, sent at 10ms
		}}
		tr := New(New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond})))
		for i := range 2 {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x")))
			if err != nil {
				t.Fatalf("write %d: %v", i+1, err)
			}
			resp.Body.Close()
			synctest.Wait()
		}
		if n := rt.numCalls(); n != 2 {
			t.Errorf("the server got %d requests for two writes, want 2: no hedged copy of a write to a host only learned", n)
		}
	})
}

// TestNestedTransportKeepsOuterKeyHeader: a write the outer Transport of
// New(New(base)) resends, to a host named to honor keys, carries its key
// under the outer one's header on every attempt, whatever header the inner
// one is configured with. The inner one took the outer's drawn key under
// Idempotency-Key for a key stamped above, and sent it under its own
// header (X-Idempotency-Key) alone: the server, which dedupes by
// Idempotency-Key, stored the write twice after a 500, where a plain
// client stores it once, and one Transport (or the inner one alone) once.
func TestNestedTransportKeepsOuterKeyHeader(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Postato,
		resilienttest.WithScript(resilienttest.RouteCreatePost, resilienttest.FailAfterStoring()))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	inner := New(srv.Transport(), WithBackoff(0, 0), WithIdempotencyHeader("X-Idempotency-Key"))
	outer := New(inner, WithBackoff(0, 0), WithKeyHonoringHosts(u.Host))
	req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
	resp, err := outer.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if st := srv.Stats(); st.StoredWrites != 1 || st.Duplicates != 0 {
		t.Errorf("one write, resent after a 500: %d requests, %d stored, %d duplicates; want 1 stored, no duplicate", st.Requests, st.StoredWrites, st.Duplicates)
	}
}

// TestNestedTransportNoHedgedCopyOfDrawnKey: a hedged copy of a write the
// outer Transport of New(New(base)) sends to a host it was told dedupes
// carries, as the write's attempts do, the word that its key was drawn by
// the outer one, not set by the caller: the inner one, which was told
// nothing of the host, hedges neither. The copy's context lacked it, and
// the inner one took the outer's key for the caller's and hedged the copy
// alone: a third request of the write, where the outer one's attempt gets
// no copy of the inner one's.
func TestNestedTransportNoHedgedCopyOfDrawnKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{
			{status: 201, before: func(*http.Request) { time.Sleep(50 * time.Millisecond) }},
			{status: 201, before: func(*http.Request) { time.Sleep(30 * time.Millisecond) }}, // the outer one's copy, sent at 10ms
			{status: 201},
		}}
		inner := New(rt, WithHedging(Hedging{Delay: 5 * time.Millisecond}))
		tr := New(inner, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithKeyHonoringHosts("api.example.com"))
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if n := rt.numCalls(); n != 2 {
			t.Errorf("the server got %d requests for one write, want 2: the outer one's attempt and its copy, neither hedged by the inner one", n)
		}
		first, _ := headerKey(rt.call(0).header, DefaultIdempotencyHeader)
		for i := range rt.numCalls() {
			if k, _ := headerKey(rt.call(i).header, DefaultIdempotencyHeader); k == "" || k != first {
				t.Errorf("request %d: key %q, want the write's (%q) on each", i+1, k, first)
			}
		}
	})
}

// TestNestedTransportRefusalAfterLostWrite: a Transport given another as
// its base (New(New(base)), an SDK's client that retries under the
// caller's) does not resend a write that the inner one may have had
// processed. The inner one, told that the host honors keys (which it
// ignores), lost its first attempt of the write (stored, then dropped
// unanswered), and its retry was refused: its breaker opened, or its dial
// was refused or timed out. It returned that error, which the outer one
// took for a write never sent: it resent it (a Classifier of its own
// retrying the breaker's refusals; at once after the dial), and the server
// stored it twice, where one Transport, or a plain client, stores it
// once. The inner one's base reports no client trace (not net/http's: an
// HTTP/3 RoundTripper, an SDK's own), which would have told the outer
// one that a request of its attempt was sent. The same holds when the
// inner one's first attempt was answered, with a 500 after the server
// stored the write (answered, yet unproven: it may have been processed),
// and its retry's dial was refused or timed out: it returned the bare
// dial error, and the outer one resent the write. The error still names
// its causes, for errors.Is, and is still the outer one's *Error.
func TestNestedTransportRefusalAfterLostWrite(t *testing.T) {
	retryRefusals := WithClassifier(func(resp *http.Response, apiErr *APIError, err error, def Class) Class {
		if errors.Is(err, ErrCircuitOpen) {
			return Transient
		}
		return def
	})
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name    string
		first   resilienttest.Step // what the server does with the inner one's first attempt
		inner   []Option
		outer   []Option
		dial    error // the error of the inner one's retry's dial, if any
		wantErr error // the cause the caller's error names
	}{
		{"breaker opened", resilienttest.DropAfter(), []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Millisecond})},
			[]Option{WithBackoff(time.Second, time.Second), retryRefusals}, nil, ErrCircuitOpen},
		{"dial refused", resilienttest.DropAfter(), []Option{WithMaxRetries(1)}, []Option{fastRetries}, errRefused, syscall.ECONNREFUSED},
		{"dial timed out", resilienttest.DropAfter(), []Option{WithMaxRetries(1)}, []Option{fastRetries}, dialTimeout, os.ErrDeadlineExceeded},
		{"answered 500, dial refused", resilienttest.FailAfterStoring(), []Option{WithMaxRetries(1)}, []Option{fastRetries}, errRefused, syscall.ECONNREFUSED},
		{"answered 500, dial timed out", resilienttest.FailAfterStoring(), []Option{WithMaxRetries(1)}, []Option{fastRetries}, dialTimeout, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true),
					resilienttest.WithScript(resilienttest.RouteCreatePost, tc.first, resilienttest.Normal()))
				defer srv.Close()
				u, _ := url.Parse(srv.URL)
				var sends atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if sends.Add(1) == 2 && tc.dial != nil {
						req.Body.Close()
						return nil, tc.dial
					}
					return srv.Transport().RoundTrip(req.WithContext(untraced{req.Context()}))
				})
				inner := New(base, append([]Option{fastRetries, WithKeyHonoringHosts(u.Host)}, tc.inner...)...)
				outer := New(inner, tc.outer...)
				req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := outer.RoundTrip(req)
				st := srv.Stats()
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%d, %d stored; want the inner one's error", resp.StatusCode, st.StoredWrites)
				}
				if st.StoredWrites != 1 {
					t.Errorf("%d writes stored (%d duplicates), want 1: %v", st.StoredWrites, st.Duplicates, err)
				}
				var e *Error
				timeout := tc.dial == dialTimeout
				if !errors.As(err, &e) || e.Attempts != 1 || e.Method != http.MethodPost || e.URL != srv.URL+"/v1/posts" || !errors.Is(err, tc.wantErr) || e.Timeout() != timeout || os.IsTimeout(err) != timeout {
					t.Errorf("%#v (%v); want the outer one's *Error of 1 attempt, naming %v, a timeout: %v", e, err, tc.wantErr, timeout)
				}
				if _, neverSent := classifyErr(err); neverSent || refusedLocally(err) {
					t.Errorf("%v reads as never sent", err)
				}
			})
		})
	}
}

// untraced is a context that carries no client trace: a base that is not
// net/http's reports none of its events.
type untraced struct{ context.Context }

func (c untraced) Value(key any) any {
	v := c.Context.Value(key)
	if _, ok := v.(*httptrace.ClientTrace); ok {
		return nil
	}
	return v
}

// TestWriteRuleForgetsHostWhoseFreshAnswersSayNotReplayed: a host that
// sends "Idempotent-Replayed: false" on its fresh answers is learned from
// the header (it speaks of its keys), and forgotten all the same when it
// creates a write twice under one key: a write whose success broke on its
// way (processed) is resent, and answered with a second create that says
// "false". Its next write, failed with a 500, is returned, not resent.
// Before, the header was taken for a replay by its presence, the second
// create taught the host again, and the 500 was resent.
func TestWriteRuleForgetsHostWhoseFreshAnswersSayNotReplayed(t *testing.T) {
	fresh := http.Header{"Idempotent-Replayed": {"false"}}
	broken := func() io.ReadCloser { return io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)) }
	rt := &rtScript{steps: []rtStep{
		{status: 201, header: http.Header{"Idempotent-Replayed": {"true"}}}, // learned
		{status: 201, header: fresh, rc: broken},                            // processed, its body broken
		{status: 201, header: fresh},                                        // the resend: created again
		{status: 500},                                                       // the next write: returned
		{status: 201},
	}}
	tr := New(rt, fastRetries, WithBufferedResponse(1<<20))
	for i, want := range []int{201, 201, 500} {
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", strings.NewReader("x"))
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("write %d: %v, %v; want %d", i, resp, err, want)
		}
		resp.Body.Close()
	}
	if n := rt.numCalls(); n != 4 {
		t.Errorf("%d requests, want 4: the last write once", n)
	}
}
