package resilient

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestKeyRequiredRetryHonorsNoRetry: a 400 saying that an idempotency key
// was required, to a write sent without one (a PUT, which gets none), is
// retried once under a new key, unless the server said not to retry it:
// its vendor hint (X-Should-Retry or Stripe-Should-Retry: false) or its
// envelope's "retryable": false, the strongest words of the precedence,
// which no default rule overrules (see decide, and keyHeld, which heeds
// them too). The answer is returned after one attempt, as its Permanent
// class says.
func TestKeyRequiredRetryHonorsNoRetry(t *testing.T) {
	const required = `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required"}}`
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		tries  int
	}{
		{"no word: retried with a key", nil, required, 2},
		{"X-Should-Retry: false", http.Header{"X-Should-Retry": {"false"}}, required, 1},
		{"Stripe-Should-Retry: false", http.Header{"Stripe-Should-Retry": {"false"}}, required, 1},
		{`"retryable": false`, nil, `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required","retryable":false}}`, 1},
		{`document's "retryable": false`, nil, `{"error":{"code":"idempotency_key_required"},"retryable":false}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{status: http.StatusBadRequest, header: tc.header, body: tc.body}, {status: http.StatusOK}}}
			tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
			resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("x")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusBadRequest
			if tc.tries == 2 {
				want = http.StatusOK
			}
			if rt.numCalls() != tc.tries || resp.StatusCode != want {
				t.Errorf("%d after %d attempts (keys %q), want %d after %d", resp.StatusCode, rt.numCalls(), rt.headers("Idempotency-Key"), want, tc.tries)
			}
		})
	}
}

// TestKeyRequiredRetryHintPrecedence: the server's word on "retry this?"
// is read by one precedence, decide's, whose strongest is the vendor's
// hint: X-Should-Retry (or Stripe-Should-Retry): true over an envelope's
// "retryable": false. A 400 saying that an idempotency key was required,
// to a PUT sent without one, that the hint says to retry is retried once
// under a new key, as without the envelope's flag. saidNoRetry read the
// envelope's false as the last word: the answer, Transient by decide, was
// resent without a key, refused as missing one on every attempt, until
// the attempts ran out.
func TestKeyRequiredRetryHintPrecedence(t *testing.T) {
	const required = `{"error":{"code":"idempotency_key_required","message":"Idempotency-Key is required","retryable":false}}`
	for _, hint := range []string{"X-Should-Retry", "Stripe-Should-Retry"} {
		t.Run(hint, func(t *testing.T) {
			var calls atomic.Int32
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				calls.Add(1)
				if req.Body != nil {
					io.Copy(io.Discard, req.Body)
					req.Body.Close()
				}
				if req.Header.Get("Idempotency-Key") != "" {
					return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				}
				h := http.Header{hint: {"true"}, "Content-Type": {"application/json"}}
				return &http.Response{StatusCode: http.StatusBadRequest, Header: h, Body: io.NopCloser(strings.NewReader(required)), ContentLength: int64(len(required)), Request: req}, nil
			})
			tr := New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker())
			resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("x")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || calls.Load() != 2 {
				t.Errorf("%d after %d attempts, want 200 after 2 (the second under a new key)", resp.StatusCode, calls.Load())
			}
		})
	}
}

// TestSaidNoRetryAgreesWithDecide: saidNoRetry reads the server's "do not
// retry" as decide does: an answer Transient by its status (a 500) is
// made Permanent by the server's words exactly when saidNoRetry says so,
// whatever the vendor hint and the envelope's flag.
func TestSaidNoRetryAgreesWithDecide(t *testing.T) {
	none := func(string) (Class, bool) { return 0, false }
	for _, hint := range []string{"", "true", "false", "maybe"} {
		for _, retryable := range []int8{-1, 0, 1} {
			for _, parsed := range []bool{false, true} {
				h := http.Header{}
				if hint != "" {
					h.Set("X-Should-Retry", hint)
				}
				env := envelope{retryable: retryable}
				want := decide(http.StatusInternalServerError, h, &env, parsed, none) == Permanent
				if got := saidNoRetry(h, &env, parsed); got != want {
					t.Errorf("saidNoRetry(X-Should-Retry %q, retryable %d, parsed %v) = %v, want %v (decide's)", hint, retryable, parsed, got, want)
				}
			}
		}
	}
}
