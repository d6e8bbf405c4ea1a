package resilient_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// refuseKeyedPatch is a base that fails a PATCH that carries a key (the
// key retry) with err: a refused dial, as net/http's is for a host that
// restarts (the request never left this machine), or a connection reset
// once it may have been written (no answer of the host either).
type refuseKeyedPatch struct {
	next http.RoundTripper
	err  error
}

func (r refuseKeyedPatch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && (req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != "") {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, r.err
	}
	return r.next.RoundTrip(req)
}

// TestKeyRetryUnsentByBaseTeachesNothing: a key retry that reached the
// base but got no answer of the host (its dial refused, or its connection
// reset once written) teaches nothing of the host either, as one refused above the base does
// (TestKeyRetryRefusedBelowTeachesNothing): only the retry's answer tells
// a host that deduplicates by key from one that asks for a key it does not
// read. The host here ignores keys: its other write, stored and then
// failed with a 500, is returned after one attempt, as a plain client
// returns it.
func TestKeyRetryUnsentByBaseTeachesNothing(t *testing.T) {
	for name, err := range map[string]error{
		"dial refused":     &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		"connection reset": &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
	} {
		t.Run(name, func(t *testing.T) { checkKeyRetryUnansweredTeachesNothing(t, err) })
	}
}

func checkKeyRetryUnansweredTeachesNothing(t *testing.T, keyRetryErr error) {
	synctest.Test(t, func(t *testing.T) {
		front, ignoring := keyRequiredHost(t, resilienttest.NewPipeServer)
		// One retry: the key retry, whose dial is refused, ends the call.
		tr := resilient.New(refuseKeyedPatch{front.Transport(), keyRetryErr}, resilient.WithBackoff(time.Millisecond, time.Millisecond), resilient.WithoutBreaker(),
			resilient.WithMaxRetries(1), resilient.WithIdempotencyMethods(http.MethodPost))
		if got, _, err := call(t, tr, context.Background(), http.MethodPatch, front.URL+"/v1/posts/p1", strings.NewReader(`{"content":"edited"}`)); got == http.StatusOK {
			t.Fatalf("patch: %d, %v; want the 400, or the key retry's refused dial", got, err)
		}
		if n := front.Stats().Requests; n != 1 {
			t.Fatalf("patch: %d requests reached the host, want 1 (its key retry failed below)", n)
		}
		if got, _, err := call(t, tr, context.Background(), http.MethodPost, front.URL+"/v1/posts", strings.NewReader(`{"content":"hello"}`)); err != nil || got != http.StatusInternalServerError {
			t.Errorf("post: %d, %v; want the 500, as a plain client gets it", got, err)
		}
		if n := ignoring.Stats().StoredWrites; n != 1 {
			t.Errorf("after a key retry that got no answer (%v), the post was stored %d times by a host that ignores keys, want 1", keyRetryErr, n)
		}
	})
}
