package resilient_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
)

// TestMaxPeekZeroStillReadsHeaders: WithMaxPeek(0) turns the envelope off,
// not the headers: a response is then classified by its status and its
// headers (a vendor's retry hint, a 403's Retry-After), as WithMaxPeek's
// documentation says, and its envelope's code and retryable flag are not
// read.
func TestMaxPeekZeroStillReadsHeaders(t *testing.T) {
	js := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name  string
		first answer
		want  int // attempts
	}{
		{"503 X-Should-Retry: false", answer{503, http.Header{"X-Should-Retry": {"false"}}, ``}, 1},
		{"400 Stripe-Should-Retry: true", answer{400, http.Header{"Stripe-Should-Retry": {"true"}}, ``}, 2},
		{"403 Retry-After", answer{403, http.Header{"Retry-After": {"1"}}, ``}, 2},
		{"400 throttling code, unread", answer{400, js, `{"error":{"code":"rate_limit_exceeded","message":"m"}}`}, 1},
		{"503 retryable false, unread", answer{503, js, `{"error":{"code":"x","message":"m","retryable":false}}`}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &answers{steps: []answer{tc.first, {status: 200}}}
				tr := resilient.New(base, resilient.WithMaxPeek(0))
				call(t, tr, context.Background(), http.MethodGet, "https://api.example.com/v1/x", nil)
				if at, _, _ := base.sent(); len(at) != tc.want {
					t.Errorf("WithMaxPeek(0), %s: %d attempts, want %d", tc.name, len(at), tc.want)
				}
			})
		})
	}
}
