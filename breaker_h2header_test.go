package resilient

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestBreakerCountsH2InvalidResponseHeader: an HTTP/2 server that answers
// every request with a header field net/http rejects ("stream error: stream
// ID 1; PROTOCOL_ERROR; invalid header field value for …") received and
// processed the request: the attempt is a failure of the host, which its
// breaker counts, not a request that never left this process (net/http's
// own refusal to send a caller's invalid header says "net/http: invalid
// header field"). After one such answer, a breaker that trips on one
// failure refuses the next call without reaching the server.
func TestBreakerCountsH2InvalidResponseHeader(t *testing.T) {
	var processed atomic.Int32
	url := h2cServer(t, &processed, func(id uint32) []byte {
		// :status 200 (static index 8), then x-bad: "a\x01b".
		return h2Frame(1, 0x4|0x1, id, []byte{0x88, 0x00, 5, 'x', '-', 'b', 'a', 'd', 3, 'a', 0x01, 'b'})
	})
	tr := New(h2cTransport(t), WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/posts", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("call %d: a response, want the invalid header's error", i+1)
		}
		if i == 1 && !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("call %d: %v; want ErrCircuitOpen", i+1, err)
		}
	}
	if n := processed.Load(); n != 1 {
		t.Errorf("the server processed %d requests, want 1: the breaker did not count its broken answer", n)
	}
}
