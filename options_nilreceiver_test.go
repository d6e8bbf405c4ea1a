package resilient

import (
	"context"
	"net/http"
	"testing"

	"github.com/cenkalti/backoff/v4"
)

// TestNilReceiverBackOffKept: a BackOff whose methods work on a nil
// pointer, as cenkalti/backoff's StopBackOff's do, is a BackOff, not one
// left unset: a factory returning (*StopBackOff)(nil) stops the call
// after its first attempt, as it did before nil pointers were taken for
// none. One whose NextBackOff needs the value, though its Reset does not
// (a (*ConstantBackOff)(nil)), is still none: the default schedule.
func TestNilReceiverBackOffKept(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bo     backoff.BackOff
		calls  int
		status int
	}{
		{"StopBackOff", (*backoff.StopBackOff)(nil), 1, http.StatusServiceUnavailable},
		{"ConstantBackOff", (*backoff.ConstantBackOff)(nil), 2, http.StatusOK}, // its NextBackOff needs the value
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}, {status: http.StatusOK, body: "ok"}}}
			tr := New(s, WithBackoff(0, 0), WithBackOff(func() backoff.BackOff { return tc.bo }))
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || s.numCalls() != tc.calls {
				t.Errorf("WithBackOff((*%s)(nil)): status %d after %d attempts; want %d after %d", tc.name, resp.StatusCode, s.numCalls(), tc.status, tc.calls)
			}
		})
	}
}
