package resilient

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingRefusedCopyHoldsNoKey checks that a copy of a keyed write
// that failed before it was sent (a refused dial) is no attempt lost: the
// server cannot hold its key, so a 409 to the retry that follows is the
// server's answer, returned, not retried as the key held by a lost request
// (see TestHedgingLostCopyHoldsKey for a copy lost after it may have been
// sent).
func TestHedgingRefusedCopyHoldsNoKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := numbered(func(i int, req *http.Request) (*http.Response, error) {
			switch i {
			case 0: // the attempt itself
				time.Sleep(100 * time.Millisecond)
				return &http.Response{StatusCode: 500, Body: http.NoBody, Request: req}, nil
			case 1: // its copy, at 50ms: never sent
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			case 2:
				return &http.Response{StatusCode: http.StatusConflict, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "POST", "http://api.test/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := rt.requests(); resp.StatusCode != http.StatusConflict || n != 3 {
			t.Errorf("status %d after %d requests; want the retry's 409, after 3 (the attempt, its refused copy, the retry)", resp.StatusCode, n)
		}
	})
}
