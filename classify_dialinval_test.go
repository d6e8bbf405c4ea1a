package resilient

import (
	"context"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
)

// TestDialInvalidArgumentNotRetried: a URL naming an IPv6 link-local
// address without its zone ("http://[fe80::1]:8080/", or with a zone no
// interface has) has every dial fail at once with EINVAL ("connect:
// invalid argument"): the caller's URL, which no retry mends, and which a
// plain client returns at once. The Transport returns it after one
// attempt, and the host, never reached, is not counted against by its
// breaker. (The dialer below returns the error Linux gives such a dial,
// so that the test does not depend on the machine's IPv6.)
func TestDialInvalidArgumentNotRetried(t *testing.T) {
	var dials int
	base := &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		dials++
		a, _ := net.ResolveTCPAddr(network, addr)
		return nil, &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.EINVAL)}
	}}
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	const u = "http://[fe80::1]:8080/v1/posts"
	if err := getClosed(t, tr, u); err == nil {
		t.Fatal("a dial that failed succeeded")
	}
	if len(attempts) == 0 {
		t.Fatal("a dial refused as an invalid argument: no attempt observed")
	}
	if len(attempts) != 1 || attempts[0].Class != Permanent || dials != 1 {
		t.Errorf("a dial refused as an invalid argument: %d attempts (%d dials), the first %v; want 1 attempt, %v", len(attempts), dials, attempts[0].Class, Permanent)
	}
	if st := tr.BreakerState(u); st != BreakerClosed {
		t.Errorf("after a dial refused as an invalid argument: breaker %v, want %v", st, BreakerClosed)
	}
}
