package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestHeldResponseWhoseBodyBroke: the body of a response retried past that
// broke while the Transport drained it (an unexpected EOF), handed to the
// caller when the retry is refused, yields what was read and then
// errBodyTruncated, whose message says the body was cut after a retry,
// wrapping the break as the caller would have read it.
func TestHeldResponseWhoseBodyBroke(t *testing.T) {
	s := &rtScript{steps: []rtStep{
		{status: 503, rc: cutAfter("bu", io.ErrUnexpectedEOF), length: 4},
		{err: fmt.Errorf("%w: api.test", ErrCircuitOpen)},
	}}
	resp, err := roundTrip(t, New(s, WithBackoff(0, 0)), newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil || resp.StatusCode != 503 || s.numCalls() != 2 {
		t.Fatalf("RoundTrip = %v, %v after %d attempts; want the held 503 after 2", resp, err, s.numCalls())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "bu" || !errors.Is(err, errBodyTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) ||
		!strings.Contains(fmt.Sprint(err), "truncated after a retry") {
		t.Errorf("held body: %q, err %v; want %q, then errBodyTruncated wrapping io.ErrUnexpectedEOF", got, err, "bu")
	}
}
