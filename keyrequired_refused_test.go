package resilient

import (
	"net/http"
	"strings"
	"testing"
)

// TestKeyRequiredNotReadFromARefusal: a 400 or 428 to a write sent without
// a key (a PUT, which gets none) whose code speaks of idempotency to say
// that the host takes no keys (idempotency_not_supported,
// request_not_idempotent) is no answer that a key is required: the write
// is not retried under a new key, and the host is not taken for one that
// deduplicates by key, so that a later POST to it is not resent after a
// 502. Taken for one, the refusal would have the host's writes resent.
func TestKeyRequiredNotReadFromARefusal(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusPreconditionRequired} {
		for _, body := range []string{
			`{"error":{"code":"idempotency_not_supported","message":"This route does not accept Idempotency-Key"}}`,
			`{"error":{"code":"request_not_idempotent","message":"no"}}`,
		} {
			rt := &rtScript{steps: []rtStep{{status: status, body: body}, {status: 502}, {status: 201}}}
			tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
			for i, method := range []string{http.MethodPut, http.MethodPost} {
				resp, err := roundTrip(t, tr, newRequest(t, t.Context(), method, "https://api.example.com/v1/posts/1", strings.NewReader("x")))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if want := []int{status, 502}[i]; resp.StatusCode != want || rt.numCalls() != i+1 {
					t.Errorf("%d %s, then %s: %d after %d attempts in all, want %d after %d", status, body, method, resp.StatusCode, rt.numCalls(), want, i+1)
				}
			}
		}
	}
}
