package resilient

import (
	"strings"
	"testing"
)

// TestKeyRequiredRetryCarriesTheKeyOnAStampedHeader: the retry a
// key-required answer earns carries the key drawn for it even when the
// first attempt's header was already rewritten and the write stays
// unproven: a PATCH that gets no automatic key (WithIdempotencyMethods
// names POST alone), whose caller left an empty Idempotency-Key (dropped
// from an unproven write's attempt), sent to a virtual host behind the
// address (whose answers teach the address nothing). Sent with the first
// attempt's header again, the retry would be refused again for want of
// the key, and the call would end with that refusal.
func TestKeyRequiredRetryCarriesTheKeyOnAStampedHeader(t *testing.T) {
	const required = `{"success":false,"error":{"code":"PUBLIC_API_IDEMPOTENCY_REQUIRED","message":"Missing Idempotency-Key on write"},"request_id":"r1"}`
	s := &rtScript{steps: []rtStep{{status: 400, body: required}, {status: 201}}}
	tr := New(s, WithoutRateLimit(), WithoutBreaker(), WithIdempotencyMethods("POST"))
	req := newRequest(t, t.Context(), "PATCH", "http://10.0.0.1/v1/posts/1", strings.NewReader(`{"content":"hello"}`))
	req.Host = "api.test"                        // a virtual host: its answers teach the address nothing
	req.Header["Idempotency-Key"] = []string{""} // left empty: a key to net/http, dropped from the attempt
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	keys := s.headers("Idempotency-Key")
	if resp.StatusCode != 201 || len(keys) != 2 {
		t.Fatalf("%d after %d attempts, want 201 after 2", resp.StatusCode, len(keys))
	}
	if keys[0] != "" || keys[1] == "" {
		t.Errorf("Idempotency-Key of the attempts: %q, want none, then the key drawn for the retry", keys)
	}
}
