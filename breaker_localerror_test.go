package resilient

import (
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
)

// TestBreakerLocalResourceErrorsCountAgainstNothing: a dial that fails for
// want of a resource of this machine (no file descriptor left, no local
// port left to connect from) never reached the host, and says nothing of
// it. A process that runs out of descriptors for a moment fails those
// calls as a plain client does; its hosts' breakers do not open, so its
// calls go through again as soon as the descriptors are back, instead of
// every caller being refused the healthy hosts for OpenTimeout.
func TestBreakerLocalResourceErrorsCountAgainstNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"EMFILE", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}},
		{"ENFILE", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.ENFILE)}},
		{"EADDRNOTAVAIL", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var exhausted atomic.Bool
				exhausted.Store(true)
				h := new(bkHost)
				up := bkNet{"api.test": h}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if exhausted.Load() {
						return nil, c.err
					}
					return up.RoundTrip(req)
				})
				tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
				const url = "https://api.test/"
				for range 2 * defaultBreakerMinRequests {
					if _, _, err := bkCall(t, tr, url); err == nil {
						t.Fatal("a call whose dial failed succeeded")
					}
				}
				if st := tr.BreakerState(url); st != BreakerClosed {
					t.Errorf("after %d dials that failed with %v: breaker %v, want %v", 2*defaultBreakerMinRequests, c.name, st, BreakerClosed)
				}
				exhausted.Store(false)
				if code, _, err := bkCall(t, tr, url); code != http.StatusOK {
					t.Errorf("once the resource is back: %d, %v; want 200", code, err)
				}
			})
		})
	}
}
