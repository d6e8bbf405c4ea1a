package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestRetryHintKeepsA429Throttled: a vendor's hint of true (X-Should-Retry,
// Stripe-Should-Retry) outranks the envelope's "retryable": false, and a
// 429 it retries stays Throttled, as the README promises ("a 429 stays
// Throttled"). The envelope's false made the 429 Permanent first, and the
// hint then made that Transient: the retry ignored the quota's reset,
// the breaker and the retry budget counted a rate limit as the host
// failing (3 calls of a Burst of 1 got 4 server attempts, not 6), and
// ParseError's class disagreed with the Transport's.
func TestRetryHintKeepsA429Throttled(t *testing.T) {
	t.Parallel()
	body := `{"error":{"code":"rate_limit_exceeded","message":"slow down","retryable":false}}`
	for _, hint := range []string{"X-Should-Retry", "Stripe-Should-Retry"} {
		t.Run(hint, func(t *testing.T) {
			header := http.Header{hint: {"true"}, "Retry-After": {"1"}}
			resp := &http.Response{StatusCode: 429, Header: header.Clone(), Body: io.NopCloser(strings.NewReader(body))}
			resp.Header.Set("Content-Type", "application/json")
			if cl := decideOf(t, resp); cl != Throttled {
				t.Errorf("decide(429, %s: true, \"retryable\": false) = %v, want %v", hint, cl, Throttled)
			}
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: 429, header: header, body: body}}}
				var attempts []Attempt
				tr := New(s, WithoutBreaker(), WithoutRateLimit(), WithMaxRetries(1),
					WithRetryBudget(RetryBudget{Burst: 1}),
					WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
				for range 3 {
					resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
				}
				if attempts[0].Class != Throttled {
					t.Errorf("429 with %s: true and \"retryable\": false: class %v, want %v", hint, attempts[0].Class, Throttled)
				}
				if n := s.numCalls(); n != 6 {
					t.Errorf("3 calls answered that 429 with a Burst of 1: %d server attempts, want 6 (a throttled retry's cost)", n)
				}
			})
		})
	}
}

// decideOf returns the default decision of resp, read as the Transport
// reads it.
func decideOf(t *testing.T, resp *http.Response) Class {
	t.Helper()
	env, parsed := peekEnvelopeWithin(resp, DefaultMaxPeek, nil)
	if !parsed {
		t.Fatalf("%d: envelope not parsed", resp.StatusCode)
	}
	return decide(resp.StatusCode, resp.Header, &env, parsed, defaultCodeClass)
}
