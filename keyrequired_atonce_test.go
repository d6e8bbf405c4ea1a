package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeyRequiredRetriedAtOnce checks the README's "What is retried": a
// write sent without a key and refused for want of one is retried once, at
// once, with a generated key: the refusal proves it was not processed, so
// no backoff is owed, whatever the schedule (the default's 500ms here).
func TestKeyRequiredRetriedAtOnce(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Idempotency-Key required"},"request_id":"r"}`
	synctest.Test(t, func(t *testing.T) {
		// PUT is outside the default methods: it carries no key until the
		// server asks for one.
		rt := &rtScript{steps: []rtStep{{status: 400, body: required}, {status: 200}}}
		var r Report
		ctx := WithReport(context.Background(), &r)
		req := newRequest(t, ctx, http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("payload"))
		t0 := time.Now()
		resp, err := New(rt).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(t0); resp.StatusCode != http.StatusOK || rt.numCalls() != 2 || took != 0 || r.Waited != 0 {
			t.Errorf("PUT refused for want of a key: %d after %d attempts, in %v (waited %v); want 200 after 2, at once", resp.StatusCode, rt.numCalls(), took, r.Waited)
		}
		if keys := rt.headers("Idempotency-Key"); len(keys) != 2 || keys[0] != "" || !uuidV4.MatchString(keys[1]) {
			t.Errorf("keys sent %q, want none, then a generated one", keys)
		}
	})
}
