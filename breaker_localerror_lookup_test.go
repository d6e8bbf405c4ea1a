package resilient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
)

// lookupErr returns the error net/http gives for a call to url whose
// host's name could not be looked up because the resolver's own socket
// failed in op with errno: the error a process short of descriptors gets for
// every call to a host named by name, before any socket to the host.
// It runs outside any bubble: the resolver's shared state is made there.
func lookupErr(t *testing.T, url, op string, errno syscall.Errno) error {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError(op, errno)}
	}}
	base := &http.Transport{DialContext: (&net.Dialer{Resolver: r}).DialContext}
	defer base.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := base.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a lookup whose socket failed with %v succeeded", errno)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || dnsErr.IsNotFound {
		t.Skipf("the resolver did not fail as a lookup whose socket failed (%v): %v", errno, err)
	}
	return err
}

// TestBreakerLocalResourceLookupCountsAgainstNothing: a process out of
// descriptors fails a call to a host named by name in the lookup of the
// name, whose socket is the first it cannot open; net/http reports it as a
// *net.DNSError that keeps the errno as text only. It never reached the
// host either, and must not trip its breaker, as a dial to an address
// that failed so does not (TestBreakerLocalResourceErrorsCountAgainstNothing).
func TestBreakerLocalResourceLookupCountsAgainstNothing(t *testing.T) {
	const url = "https://api.test/"
	for _, c := range []struct {
		name, op string
		errno    syscall.Errno
	}{
		{"EMFILE", "socket", syscall.EMFILE},
		{"ENFILE", "socket", syscall.ENFILE},
		{"EADDRNOTAVAIL", "connect", syscall.EADDRNOTAVAIL},
	} {
		lerr := lookupErr(t, url, c.op, c.errno)
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var exhausted atomic.Bool
				exhausted.Store(true)
				up := bkNet{"api.test": new(bkHost)}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if exhausted.Load() {
						return nil, lerr
					}
					return up.RoundTrip(req)
				})
				tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
				for range 2 * defaultBreakerMinRequests {
					if _, _, err := bkCall(t, tr, url); err == nil {
						t.Fatal("a call whose lookup failed succeeded")
					}
				}
				if st := tr.BreakerState(url); st != BreakerClosed {
					t.Errorf("after %d lookups that failed with %q: breaker %v, want %v", 2*defaultBreakerMinRequests, lerr, st, BreakerClosed)
				}
				exhausted.Store(false)
				if code, _, err := bkCall(t, tr, url); code != http.StatusOK {
					t.Errorf("once the resource is back: %d, %v; want 200", code, err)
				}
			})
		})
	}
}
