package resilient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestDialInvalidArgumentRoutableRetried: a dial of an address that needs
// no zone refused with EINVAL is no wrong URL: OpenBSD answers a refused
// connection so, and macOS a connection to itself (a local port that
// nothing listens on yet, while the server restarts). It stays Transient,
// a refused dial never sent, retried as ECONNREFUSED is: here the server
// is up for the second dial, and the call succeeds. (Only an IPv6
// link-local address, which a dial without its zone cannot reach, is the
// caller's, see TestDialInvalidArgumentNotRetried.)
func TestDialInvalidArgumentRoutableRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var dials atomic.Int32
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			a, _ := net.ResolveTCPAddr(network, addr)
			return nil, &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.EINVAL)}
		}
		return new(net.Dialer).DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0))
	if err := getClosed(t, tr, srv.URL+"/v1/posts"); err != nil || dials.Load() != 2 {
		t.Errorf("a dial of 127.0.0.1 refused with EINVAL, then up: %v after %d dials; want a success after 2", err, dials.Load())
	}
}

// TestProxyDialInvalidArgumentNotRetried: a proxy at an IPv6 link-local
// address without its zone (HTTPS_PROXY=http://[fe80::1]:3128) has every
// dial of it fail with EINVAL, which net/http wraps in its "proxyconnect"
// error: the caller's setting, which no retry mends, as for a host at
// such an address (TestDialInvalidArgumentNotRetried). The Transport
// returns it after one attempt, and the host, never reached, is not
// counted against by its breaker.
func TestProxyDialInvalidArgumentNotRetried(t *testing.T) {
	proxy, _ := url.Parse("http://[fe80::1]:3128")
	var dials atomic.Int32
	base := &http.Transport{Proxy: http.ProxyURL(proxy), DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		a, _ := net.ResolveTCPAddr(network, addr)
		return nil, &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.EINVAL)}
	}}
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	const u = "http://api.example.com/v1/posts"
	if err := getClosed(t, tr, u); err == nil {
		t.Fatal("a dial that failed succeeded")
	}
	if len(attempts) == 0 {
		t.Fatal("a proxy dial refused as an invalid argument: no attempt observed")
	}
	if len(attempts) != 1 || attempts[0].Class != Permanent || dials.Load() != 1 {
		t.Errorf("a proxy dial refused as an invalid argument: %d attempts (%d dials), the first %v; want 1 attempt, %v", len(attempts), dials.Load(), attempts[0].Class, Permanent)
	}
	if st := tr.BreakerState(u); st != BreakerClosed {
		t.Errorf("after a proxy dial refused as an invalid argument: breaker %v, want %v", st, BreakerClosed)
	}
}
