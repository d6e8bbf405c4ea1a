package resilient_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestWriteRuleKeyMissingTeachesNothing: a host that answers a write
// carrying a key drawn by the Transport that its key is missing or required
// (its code says so, or, as the IETF Idempotency-Key draft's 400 does, its
// problem's title and detail) did not read that key: it reads another
// header (X-Idempotency-Key, where the caller kept the default), or a
// proxy in front of it drops the header. That is no word that it
// deduplicates by the key the Transport sends: its other writes (here
// POST /v1/posts, whose keys it ignores), stored and then failed with a
// 500, are returned after one attempt, as a plain client returns them.
// Before, the answer taught the host, and such a write was resent and
// stored twice.
func TestWriteRuleKeyMissingTeachesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"shared shape, key required", "application/json", `{"error":{"code":"idempotency_key_required","message":"X-Idempotency-Key is required"}}`},
		{"error string, key missing", "application/json", `{"error":"MISSING_IDEMPOTENCY_KEY","message":"no key"}`},
		{"code and message, key missing", "application/json", `{"code":"IdempotencyKeyMissing","message":"no key"}`},
		{"428, key required", "application/json", `{"error":{"code":"idempotency_key_required","message":"no key"}}`},
		{"problem of the draft", "application/problem+json", `{"type":"https://developer.example.com/idempotency","title":"Idempotency-Key is missing","status":400,"detail":"This operation is idempotent and it requires correct usage of Idempotency Key."}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := http.StatusBadRequest
			if strings.HasPrefix(tc.name, "428") {
				status = http.StatusPreconditionRequired
			}
			refused := func(r *http.Request) bool { return r.URL.Path == "/v1/charges" }
			checkKeyMissingTeachesNothing(t, refused, status, tc.contentType, tc.body, http.MethodPost, "/v1/charges", `{"amount":1}`)
		})
	}
}

// checkKeyMissingTeachesNothing makes a host that ignores keys and reads
// none but X-Idempotency-Key, which answers the requests refused picks that
// lack it with status and body, and whose POST /v1/posts stores its write
// and then fails with a 500. Through a plain client, then through the
// Transport (which sends its keys as Idempotency-Key), it sends method to
// path (the refused write) and then the post, and checks that the post was
// stored as many times both ways.
func checkKeyMissingTeachesNothing(t *testing.T, refused func(*http.Request) bool, status int, contentType, body, method, path, payload string, opts ...resilient.Option) {
	t.Helper()
	stored := func(resilientTr bool) int {
		ignoring := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithIgnoreIdempotencyKeys(true))
		front := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refused(r) && r.Header.Get("X-Idempotency-Key") == "" {
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(status)
				w.Write([]byte(body))
				return
			}
			ignoring.ServeHTTP(w, r)
		})), resilienttest.WithScript("POST /v1/posts", resilienttest.FailAfterStoring()))
		defer func() { front.Close(); ignoring.Close() }()
		var tr http.RoundTripper = front.Transport()
		if resilientTr {
			tr = resilient.New(tr, append([]resilient.Option{resilient.WithBackoff(0, 0)}, opts...)...)
		}
		ctx := context.Background()
		if got, _, err := call(t, tr, ctx, method, front.URL+path, strings.NewReader(payload)); err != nil || got != status {
			t.Fatalf("%s %s: %d, %v; want %d", method, path, got, err, status)
		}
		if got, _, err := call(t, tr, ctx, http.MethodPost, front.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`)); err != nil || got != http.StatusInternalServerError {
			t.Errorf("post: %d, %v; want the 500, as a plain client gets it", got, err)
		}
		return ignoring.Stats().StoredWrites
	}
	plain := stored(false)
	if got := stored(true); got != plain {
		t.Errorf("the post was stored %d times through the Transport, %d through a plain client", got, plain)
	}
}

// TestKeyRequiredRetryUnreadKeyTeachesNothing: a write sent without a key
// (its method not among WithIdempotencyMethods) and refused for want of
// one is resent once with a generated key; a host that refuses that one
// too, as missing, did not read it (it reads X-Idempotency-Key, where the
// caller kept the default header): its other writes (POST /v1/posts,
// whose keys it ignores), stored and then failed with a 500, are returned
// after one attempt, as a plain client returns them. Before, the refusal
// of the keyless write taught the host, and such a write was resent and
// stored twice.
func TestKeyRequiredRetryUnreadKeyTeachesNothing(t *testing.T) {
	const required = `{"error":{"code":"idempotency_key_required","message":"X-Idempotency-Key is required"}}`
	refused := func(r *http.Request) bool { return r.Method == http.MethodPatch }
	checkKeyMissingTeachesNothing(t, refused, http.StatusBadRequest, "application/json", required,
		http.MethodPatch, "/v1/posts/p1", `{"content":"edited"}`, resilient.WithIdempotencyMethods(http.MethodPost))
}
