package resilient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds the dials that the caller's own Dialer.Control or
// Dialer.ControlContext callback refuses (an SSRF guard that refuses a
// private address): net wraps the callback's error in its dial
// *net.OpError, and a plain client returns it at once.

// errDialBlocked is the error of the tests' SSRF guard.
var errDialBlocked = errors.New("blocked: private address")

// checkCallerRefused is checkCallersDial (calls counting the callback's
// calls) for a base whose own code refuses every connection with cause
// (what): the call's error also says that the caller's callback refused,
// wraps cause and is a *RequestError.
func checkCallerRefused(t *testing.T, base http.RoundTripper, u, what string, calls *atomic.Int32, cause error) {
	t.Helper()
	err := checkCallersDial(t, base, u, what, calls)
	if !errors.Is(err, cause) || !errors.As(err, new(*RequestError)) {
		t.Errorf("%s: error %v; want a *RequestError that errors.Is finds %v in", what, err, cause)
	}
	if msg := err.Error(); !strings.Contains(msg, "resilient: ") || !strings.Contains(msg, "callback refused") {
		t.Errorf("%s: error %q; want it to say that the caller's callback refused", what, msg)
	}
}

// TestDialControlRefusalNotRetried: a base whose DialContext is a
// net.Dialer's with a ControlContext (or Control) that refuses the address
// has net fail the dial with the callback's error inside its
// *net.OpError{Op: "dial"}. The Transport took it for the network's: the
// call was sent 6 times, each a failure of the breaker of a host never
// reached. Now it fails at once, counted against nothing; through a proxy
// whose dial the callback refuses too.
func TestDialControlRefusalNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	proxy, _ := url.Parse(srv.URL)
	for _, tc := range []struct {
		name  string
		ctx   bool
		proxy bool
	}{
		{"ControlContext", true, false},
		{"Control", false, false},
		{"ControlContext, a proxy's dial", true, true},
	} {
		var calls atomic.Int32
		d := new(net.Dialer)
		if tc.ctx {
			d.ControlContext = func(context.Context, string, string, syscall.RawConn) error { calls.Add(1); return errDialBlocked }
		} else {
			d.Control = func(string, string, syscall.RawConn) error { calls.Add(1); return errDialBlocked }
		}
		base := &http.Transport{DialContext: d.DialContext}
		if tc.proxy {
			base.Proxy = http.ProxyURL(proxy)
		}
		checkCallerRefused(t, base, srv.URL+"/v1/posts", tc.name, &calls, errDialBlocked)
		base.CloseIdleConnections()
	}
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests, want 0", hits.Load())
	}
}

// TestDialControlNetworkFailuresRetried: a base whose dialer has a
// ControlContext that lets the dial through still has the network's own
// failures retried: a refused dial (nothing listens on the port), and a
// dial that times out (here the callback holds the dial past the
// dialer's Timeout, and net reports its own "i/o timeout").
func TestDialControlNetworkFailuresRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/v1/posts"
	ln.Close()
	for _, tc := range []struct {
		name string
		wait bool
	}{
		{"a refused dial", false},
		{"a dial timeout", true},
	} {
		var calls atomic.Int32
		d := &net.Dialer{ControlContext: func(ctx context.Context, _, _ string, _ syscall.RawConn) error {
			calls.Add(1)
			if tc.wait {
				<-ctx.Done()
			}
			return nil
		}}
		if tc.wait {
			d.Timeout = 20 * time.Millisecond
		}
		base := &http.Transport{DialContext: d.DialContext}
		var attempts []Attempt
		tr := New(base, WithBackoff(0, 0), WithMaxRetries(2), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
		err := getClosed(t, tr, closed)
		if err == nil {
			t.Fatalf("%s: the call succeeded", tc.name)
		}
		if len(attempts) != 3 || attempts[0].Class != Transient || calls.Load() != 3 || errors.As(err, new(*RequestError)) {
			t.Errorf("%s: %d attempts (%d callback calls), %v; want 3 attempts, Transient, no *RequestError", tc.name, len(attempts), calls.Load(), err)
		}
	}
}

// TestDialControlRefusalShapes: only a dial's *net.OpError for an address
// whose cause is none of net's own is read as a callback's refusal; net's
// own causes there (the resolver's, with no address; a refused connect; a
// timeout; a canceled dial; net's errors.New) are not.
func TestDialControlRefusalShapes(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443}
	dial := func(a net.Addr, err error) error { return &net.OpError{Op: "dial", Net: "tcp", Addr: a, Err: err} }
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, canceledErr := new(net.Dialer).DialContext(canceled, "tcp", "127.0.0.1:1")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a callback's error", dial(addr, errDialBlocked), true},
		{"a callback's error, wrapped by the callback", dial(addr, fmt.Errorf("guard: %w", errDialBlocked)), true},
		{"a callback's error, a proxy's dial", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: dial(addr, errDialBlocked)}, true},
		{"the resolver's, no address", dial(nil, &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}), false},
		{"no address, bare words", dial(nil, errDialBlocked), false},
		{"a refused connect", dial(addr, os.NewSyscallError("connect", syscall.ECONNREFUSED)), false},
		{"a bare errno", dial(addr, syscall.EPERM), false},
		{"an address error", dial(addr, &net.AddrError{Err: "non-IPv4 address", Addr: "::1"}), false},
		{"a canceled dial", canceledErr, false},
		{"net's missing address", dial(addr, errors.New("missing address")), false},
		{"poll's not pollable", dial(addr, errors.New("not pollable")), false},
		{"a read, not a dial", &net.OpError{Op: "read", Net: "tcp", Addr: addr, Err: errDialBlocked}, false},
	} {
		if got := dialControlRefusal(tc.err); got != tc.want {
			t.Errorf("%s: dialControlRefusal(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
