package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDocumentRetryableFalseIsNotOverruled: an envelope whose document
// says "retryable": false is not retried, whatever a part of it says. The
// README's precedence puts "an explicit retryable boolean in the envelope"
// above the status, and a plain client never retries: a document that
// answers false (a batch refused as a whole) beside an item of its
// "errors" (or its error object) that says true was retried as Transient,
// a 400 resent five times with the same body, and ParseError called it
// Retryable.
func TestDocumentRetryableFalseIsNotOverruled(t *testing.T) {
	for _, tc := range []struct{ ct, body string }{
		{"application/json", `{"message":"Batch rejected","retryable":false,"errors":[{"code":"item_timeout","message":"item 1 timed out","retryable":true}]}`},
		{"application/json", `{"errors":[{"code":"item_timeout","retryable":true}],"retryable":false}`},
		{"application/problem+json", `{"type":"about:blank","title":"Bad Request","status":400,"retryable":false,"errors":[{"code":"item_timeout","retryable":true}]}`},
		{"application/json", `{"error":{"code":"batch_rejected","message":"m","retryable":true},"retryable":false}`},
	} {
		s := &rtScript{steps: []rtStep{{status: 400, header: http.Header{"Content-Type": {tc.ct}}, body: tc.body}, {status: 200}}}
		var attempts []Attempt
		tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/batches/1", nil))
		resp.Body.Close()
		if s.numCalls() != 1 || attempts[0].Class != Permanent {
			t.Errorf("%s: %d attempts, class %v; want one Permanent attempt", tc.body, s.numCalls(), attempts[0].Class)
		}
		resp = &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {tc.ct}}, Body: io.NopCloser(strings.NewReader(tc.body))}
		if e := ParseError(resp); e.Retryable {
			t.Errorf("ParseError(%s) = %+v; want not retryable", tc.body, e)
		}
	}
}
