package resilient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// This file holds the dials and proxies that fail for the caller's
// setting, the same way on every attempt, before anything reaches the
// host: a plain client returns such a failure at once, and so does the
// Transport, after one attempt, counting nothing against the host's
// breaker.

// checkCallersDial sends a GET to u through base, whose every dial fails
// for the caller's setting (what), and checks that the call fails after one
// attempt, Permanent, one dial (as dials counts them), and that the
// breaker of the host, never reached, stays closed. It returns the call's
// error.
func checkCallersDial(t *testing.T, base http.RoundTripper, u, what string, dials *atomic.Int32) error {
	t.Helper()
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	err := getClosed(t, tr, u)
	if err == nil {
		t.Fatalf("%s: the call succeeded", what)
	}
	if len(attempts) == 0 {
		t.Fatalf("%s: no attempt observed", what)
	}
	if len(attempts) != 1 || attempts[0].Class != Permanent || dials.Load() != 1 {
		t.Errorf("%s: %d attempts (%d dials), the first %v; want 1 attempt, %v", what, len(attempts), dials.Load(), attempts[0].Class, Permanent)
	}
	if st := tr.BreakerState(u); st != BreakerClosed {
		t.Errorf("after %s: breaker %v, want %v", what, st, BreakerClosed)
	}
	return err
}

// einvalDial returns a DialContext that counts its dials and fails each as
// Linux fails the dial of an IPv6 link-local address without its zone, so
// that the tests do not depend on the machine's IPv6.
func einvalDial(dials *atomic.Int32) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		a, _ := net.ResolveTCPAddr(network, addr)
		return nil, &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.EINVAL)}
	}
}

// TestDialInvalidArgumentNotRetried: a URL naming an IPv6 link-local
// address without its zone ("http://[fe80::1]:8080/", or with a zone no
// interface has) has every dial fail at once with EINVAL ("connect:
// invalid argument"): the caller's URL, which no retry mends.
func TestDialInvalidArgumentNotRetried(t *testing.T) {
	var dials atomic.Int32
	checkCallersDial(t, &http.Transport{DialContext: einvalDial(&dials)}, "http://[fe80::1]:8080/v1/posts",
		"a dial refused as an invalid argument", &dials)
}

// TestProxyDialInvalidArgumentNotRetried: a proxy at such an address
// (HTTPS_PROXY=http://[fe80::1]:3128) fails every dial of it alike, which
// net/http wraps in its "proxyconnect" error.
func TestProxyDialInvalidArgumentNotRetried(t *testing.T) {
	proxy, _ := url.Parse("http://[fe80::1]:3128")
	var dials atomic.Int32
	checkCallersDial(t, &http.Transport{Proxy: http.ProxyURL(proxy), DialContext: einvalDial(&dials)}, "http://api.example.com/v1/posts",
		"a proxy dial refused as an invalid argument", &dials)
}

// TestDialUnixInvalidArgumentNotRetried: a base that dials a Unix socket
// (a Docker or a sidecar's API, http.Transport's DialContext set to it)
// whose path is longer than a socket address holds has every dial refused
// with EINVAL before any connect: the caller's setting. A real dial.
func TestDialUnixInvalidArgumentNotRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("s", 200)+".sock")
	var dials atomic.Int32
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials.Add(1)
		return new(net.Dialer).DialContext(ctx, "unix", path)
	}}
	checkCallersDial(t, base, "http://docker/v1.43/containers/json", "a Unix socket dial refused as an invalid argument", &dials)
}

// TestProxyFromEnvironmentMisconfiguredNotRetried: an HTTPS_PROXY or
// HTTP_PROXY that does not parse ("http://proxy corp:8080", a space typed
// into it) makes net/http's ProxyFromEnvironment, the Proxy of
// http.DefaultTransport, fail every request of the process the same way
// ("invalid proxy address …"), before it dials anything.
func TestProxyFromEnvironmentMisconfiguredNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	const env = "http://proxy corp:8080"
	var proxied atomic.Int32
	base := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		proxied.Add(1)
		// golang.org/x/net/http/httpproxy's words, as
		// http.ProxyFromEnvironment returns them for env.
		_, err := url.Parse("http://" + env)
		return nil, fmt.Errorf("invalid proxy address %q: %v", env, err)
	}}
	defer base.CloseIdleConnections()
	checkCallersDial(t, base, srv.URL+"/v1/posts", "a misconfigured proxy", &proxied)
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests, want 0", hits.Load())
	}
}

// TestProxyFuncParseErrorNotRetried: a Proxy func of the caller's own that
// parses a setting that does not parse (url.Parse's *url.Error, Op
// "parse", which net/http returns as it is, before anything is dialed)
// fails every request alike, whatever its words ("invalid character"
// here, which no text of net/http's names). It is the caller's setting:
// one attempt, Permanent, nothing counted against the host.
func TestProxyFuncParseErrorNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	var proxied atomic.Int32
	base := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		proxied.Add(1)
		//lint:ignore SA1007 the caller's setting does not parse: the case tested.
		return url.Parse("http://proxy corp:8080")
	}}
	defer base.CloseIdleConnections()
	checkCallersDial(t, base, srv.URL+"/v1/posts", "a Proxy func's unparsable setting", &proxied)
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests, want 0", hits.Load())
	}
}

// TestDialInvalidArgumentRoutableRetried: a dial of an address that needs
// no zone refused with EINVAL is no wrong URL: OpenBSD answers a refused
// connection so, and macOS a connection to itself (a local port that
// nothing listens on yet, while the server restarts). It stays Transient,
// a refused dial never sent, retried as ECONNREFUSED is: here the server
// is up for the second dial, and the call succeeds.
func TestDialInvalidArgumentRoutableRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var dials atomic.Int32
	refuse := einvalDial(&dials)
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Load() == 0 {
			return refuse(ctx, network, addr)
		}
		dials.Add(1)
		return new(net.Dialer).DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0))
	if err := getClosed(t, tr, srv.URL+"/v1/posts"); err != nil || dials.Load() != 2 {
		t.Errorf("a dial of 127.0.0.1 refused with EINVAL, then up: %v after %d dials; want a success after 2", err, dials.Load())
	}
}
