package resilient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// This file holds the TLS handshakes that the caller's own
// VerifyPeerCertificate or VerifyConnection callback of the base's
// TLSClientConfig refuses (certificate pinning): crypto/tls returns the
// callback's error as it is, net/http returns it from the dial, and a plain
// client returns it at once.

// errPinMismatch is the error of the tests' certificate pinning.
var errPinMismatch = errors.New("certificate pin mismatch")

// TestTLSCallbackRefusalNotRetried: a base whose TLSClientConfig pins the
// server's certificate, and refuses it, had the Transport take the
// callback's error for the network's: the call was sent 6 times, each a
// failure of the host's breaker. Now it fails at once, counted against
// nothing, over HTTP/1 and HTTP/2, by VerifyPeerCertificate and by
// VerifyConnection. The server's handler is never reached.
func TestTLSCallbackRefusalNotRetried(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		srv.EnableHTTP2 = h2
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		srv.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		for _, peer := range []bool{true, false} {
			var calls atomic.Int32
			// As a user configures one: http.DefaultTransport's clone
			// (its net.Dialer, ProxyFromEnvironment), trusting the
			// server's certificate, pinned.
			base := http.DefaultTransport.(*http.Transport).Clone()
			base.TLSClientConfig = &tls.Config{RootCAs: roots}
			what := "VerifyConnection"
			if peer {
				what = "VerifyPeerCertificate"
				base.TLSClientConfig.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { calls.Add(1); return errPinMismatch }
			} else {
				base.TLSClientConfig.VerifyConnection = func(tls.ConnectionState) error { calls.Add(1); return errPinMismatch }
			}
			if h2 {
				what += " over HTTP/2"
			}
			checkCallerRefused(t, base, srv.URL+"/v1/posts", what, &calls, errPinMismatch)
			base.CloseIdleConnections()
		}
		srv.Close()
		if hits.Load() != 0 {
			t.Errorf("the server saw %d requests, want 0", hits.Load())
		}
	}
}

// TestTLSCallbackNetworkFailuresRetried: a base whose TLSClientConfig has
// a pinning callback still has the network's own failures of the
// handshake retried: a server that resets the connection at once.
func TestTLSCallbackNetworkFailuresRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	var calls atomic.Int32
	base := &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { calls.Add(1); return nil },
	}}
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithMaxRetries(2), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	err = getClosed(t, tr, "https://"+ln.Addr().String()+"/v1/posts")
	if err == nil {
		t.Fatal("the call succeeded")
	}
	if len(attempts) != 3 || attempts[0].Class != Transient || accepts.Load() != 3 || calls.Load() != 0 || errors.As(err, new(*RequestError)) {
		t.Errorf("a handshake reset: %d attempts (%d connections, %d callback calls), %v; want 3 attempts, Transient, no *RequestError",
			len(attempts), accepts.Load(), calls.Load(), err)
	}
}

// TestTLSCallbackNotBlamedForOthersWords: where a bare error of other words
// than crypto/tls's may come from elsewhere, a pinning callback is not
// blamed for it, and the failure is retried as before: a DialContext of
// the caller's own (a tunnel's dialer, which may word the network's
// failures its own way) that fails once, and a proxy that answers the
// CONNECT with a 502 whose reason phrase is its own ("Upstream Down",
// which net/http returns bare).
func TestTLSCallbackNotBlamedForOthersWords(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	pinned := func() *tls.Config {
		return &tls.Config{RootCAs: roots, VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}
	}

	var dials atomic.Int32
	tunnel := &http.Transport{TLSClientConfig: pinned(), DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, errors.New("tunnel down")
		}
		return new(net.Dialer).DialContext(ctx, network, addr)
	}}
	defer tunnel.CloseIdleConnections()
	if err := getClosed(t, New(tunnel, WithBackoff(0, 0)), srv.URL+"/v1/posts"); err != nil || dials.Load() != 2 {
		t.Errorf("a tunnel's dialer down once: %v after %d dials; want a success after 2", err, dials.Load())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connects atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connects.Add(1)
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 502 Upstream Down\r\nContent-Length: 0\r\n\r\n")
			c.Close()
		}
	}()
	proxy, _ := url.Parse("http://" + ln.Addr().String())
	proxied := &http.Transport{TLSClientConfig: pinned(), Proxy: http.ProxyURL(proxy)}
	var attempts []Attempt
	tr := New(proxied, WithBackoff(0, 0), WithMaxRetries(2), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	err = getClosed(t, tr, srv.URL+"/v1/posts")
	if err == nil || len(attempts) != 3 || connects.Load() != 3 || errors.As(err, new(*RequestError)) {
		t.Errorf("a proxy's 502 Upstream Down: %d attempts (%d CONNECTs), %v; want 3 attempts, no *RequestError", len(attempts), connects.Load(), err)
	}
}
