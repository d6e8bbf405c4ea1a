package resilient

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
)

// bom is the UTF-8 byte-order mark, which some servers (.NET's UTF-8
// writers) put before a JSON body.
const bom = "\ufeff"

// TestEnvelopeAfterByteOrderMark: an error envelope whose body starts with
// a UTF-8 byte-order mark is read as without it, as RFC 8259 lets a parser
// do: a 503 whose envelope says "retryable": false is returned after one
// attempt, a PUT's key-required 400 is sent once more with a key, and
// ParseError reads the code, also from a body that came gzip-encoded. The
// mark made every such body no envelope: the 503 was sent six times, the
// PUT once.
func TestEnvelopeAfterByteOrderMark(t *testing.T) {
	t.Run("503 not to be retried", func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{{status: 503, body: bom + `{"error":{"code":"maintenance","message":"m","retryable":false}}`, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}}}}
		resp, err := roundTrip(t, New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker()), newRequest(t, t.Context(), http.MethodGet, "https://api.example.com/v1/posts", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || rt.numCalls() != 1 {
			t.Errorf("%d after %d attempts, want the 503 after 1", resp.StatusCode, rt.numCalls())
		}
	})
	t.Run("key required", func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{
			{status: 400, body: bom + `{"error":{"code":"idempotency_key_required","message":"Send an Idempotency-Key"}}`},
			{status: 200},
		}}
		resp, err := roundTrip(t, New(rt, fastRetries, WithoutRateLimit(), WithoutBreaker()), newRequest(t, t.Context(), http.MethodPut, "https://api.example.com/v1/posts/1", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || rt.numCalls() != 2 || rt.calls[1].header.Get(DefaultIdempotencyHeader) == "" {
			t.Errorf("%d after %d attempts, want 200 after 2, the second with a key", resp.StatusCode, rt.numCalls())
		}
	})
	t.Run("ParseError", func(t *testing.T) {
		body := bom + ` {"error":{"code":"maintenance","message":"m","retryable":false}}`
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(body))
		zw.Close()
		for _, tc := range []struct {
			name string
			step rtStep
		}{
			{"plain", rtStep{status: 503, body: body}},
			{"gzip", rtStep{status: 503, body: gz.String(), header: http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"application/json"}}}},
		} {
			resp := newResponse(tc.step)
			var e *APIError
			got := readBodyAfter(t, resp, func() { e = ParseError(resp) })
			if got != tc.step.body {
				t.Errorf("%s: body changed by ParseError", tc.name)
			}
			if e.Code != "maintenance" || e.Retryable {
				t.Errorf("%s: ParseError = %+v, want code maintenance, not retryable", tc.name, e)
			}
		}
	})
}
