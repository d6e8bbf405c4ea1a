package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestParseErrorReadsRateHeadersAsTheTransport: ParseError's Retryable
// reflects the Transport's default decision, and a 403 whose rate-limit
// headers were spelled by hand (a stub's http.Header{"X-RateLimit-Remaining":
// …}, not net/http's canonical keys) is a rate limit's to the Transport
// (see classifier.classify): ParseError reads it so too, and its
// RetryAfter is the time to the reset, as the Transport's APIError has it.
// The response keeps the header it came with.
func TestParseErrorReadsRateHeadersAsTheTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const body = `{"message":"API rate limit exceeded"}`
		h := http.Header{
			"X-RateLimit-Limit":     {"60"},
			"X-RateLimit-Remaining": {"0"},
			"X-RateLimit-Reset":     {time.Now().Add(20 * time.Second).UTC().Format(time.RFC3339)},
		}
		var fromTransport *APIError
		s := &rtScript{steps: []rtStep{{status: http.StatusForbidden, header: h, body: body}}}
		tr := New(s, WithMaxRetries(0), WithClassifier(func(_ *http.Response, e *APIError, _ error, def Class) Class {
			fromTransport = e
			return def
		}))
		resp, err := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "https://api.test/v1/posts", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if fromTransport == nil || !fromTransport.Retryable || fromTransport.RetryAfter != 20*time.Second {
			t.Fatalf("the Transport's APIError = %+v, want Retryable after 20s", fromTransport)
		}

		resp = newResponse(rtStep{status: http.StatusForbidden, header: h, body: body})
		got := readBodyAfter(t, resp, func() {
			e := ParseError(resp)
			if e.Retryable != fromTransport.Retryable || e.RetryAfter != fromTransport.RetryAfter {
				t.Errorf("ParseError: Retryable %v, RetryAfter %v; the Transport's: %v, %v",
					e.Retryable, e.RetryAfter, fromTransport.Retryable, fromTransport.RetryAfter)
			}
		})
		if got != body {
			t.Errorf("body after ParseError = %q, want %q", got, body)
		}
		if _, ok := resp.Header["X-RateLimit-Remaining"]; !ok {
			t.Error("ParseError rewrote the response's header")
		}
	})
}
