package resilient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"syscall"
)

// This file holds the connections that the caller's own code in the base
// refuses: a Dialer.Control or Dialer.ControlContext callback (an SSRF
// guard refusing a private address), or the VerifyPeerCertificate or
// VerifyConnection callback of the TLSClientConfig of the base, net/http's
// Transport (certificate pinning). A plain client returns such a refusal
// at once; so does the Transport, which counts it against nothing.

// callbackFault returns the *RequestError of an attempt of req, sent
// through base, that failed with err because a callback of the caller's
// refused the connection (see dialControlRefusal and tlsCallbackRefusal),
// or nil. It is asked only after a failure, so that a success costs
// nothing. An error that is already the caller's, or that a call below
// (a Transport given this one's attempts) ended with, or of an attempt
// whose context is done (whose error may be the context's cause), is none.
func callbackFault(base http.RoundTripper, req *http.Request, err error) *RequestError {
	if errors.As(err, new(*RequestError)) || lostBelow(err) || req.Context().Err() != nil {
		return nil
	}
	switch {
	case dialControlRefusal(err):
		return &RequestError{Err: &callbackRefusal{err: err, what: "dialer's Control callback"}}
	case tlsCallbackRefusal(base, req, err):
		return &RequestError{Err: &callbackRefusal{err: err, what: "TLS callback"}}
	}
	return nil
}

// callbackRefusal is the error of a connection that a callback of the
// caller's (what) refused: err, which it unwraps to.
type callbackRefusal struct {
	err  error
	what string
}

func (e *callbackRefusal) Error() string {
	return "the caller's " + e.what + " refused the connection: " + e.err.Error()
}

func (e *callbackRefusal) Unwrap() error { return e.err }

// dialControlRefusal reports whether err holds net's error for the dial of
// an address (a *net.OpError whose Op is "dial" and whose Addr is set, as
// net's dial of one address builds it, alone or within net/http's
// "proxyconnect" error) whose cause is not net's own: net returns the
// error of a Dialer's Control or ControlContext callback there as it is,
// and any other cause there is net's: an errno, bare or in an
// *os.SyscallError (a refused or unreachable connect, a failed socket or
// setsockopt), a net.Error (a timeout, an *AddrError, an
// UnknownNetworkError), the context's errors, internal/poll's, and net's
// few errors.New (see netOwnError). The resolver's errors (no such host)
// come with no Addr. A callback whose error is, or wraps, one of those
// (an errno of a setsockopt it made) is not told apart, and stays the
// network's.
func dialControlRefusal(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		op, ok := e.(*net.OpError)
		if !ok {
			continue
		}
		if op.Op == "dial" {
			return op.Addr != nil && op.Err != nil && !netOwnError(op.Err)
		}
	}
	return false
}

// netOwnError reports whether err, the cause of a dial's *net.OpError, is,
// or wraps, an error of net's, of the system's, of internal/poll's or of
// the context's (see dialControlRefusal).
func netOwnError(err error) bool {
	var netErr net.Error
	var errno syscall.Errno
	var sysErr *os.SyscallError
	if errors.As(err, &netErr) || errors.As(err, &errno) || errors.As(err, &sysErr) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if typeFrom(err, func(p string) bool {
		return p == "net" || p == "os" || p == "syscall" || p == "context" || p == "internal/poll" || strings.HasPrefix(p, "internal/syscall/")
	}) {
		return true
	}
	// net's and internal/poll's errors.New, whose type is errors'.
	switch msg := err.Error(); msg {
	case "no suitable address found", "missing address", "use of closed file",
		"file type does not support deadline", "not pollable", "waiting for unsupported file type":
		return true
	default:
		return strings.HasPrefix(msg, "unknown mode: ")
	}
}

// tlsCallbackRefusal reports whether err, the error of an attempt of req
// sent through base, is the error of the VerifyPeerCertificate or
// VerifyConnection callback of base's TLSClientConfig: crypto/tls returns
// it from the handshake as it is, and net/http from its dial. It tells so
// only where nothing else returns an error of the caller's words: base is
// net/http's Transport, with such a callback, that dials with net's Dialer
// (DialContext unset, or a net.Dialer's DialContext, as
// http.DefaultTransport's clones have it; a DialContext of the caller's own
// may word the network's failures its own way), makes the TLS connection
// itself (no DialTLSContext), for an https URL, through no proxy (a
// proxy's refusal of the tunnel is its reason phrase, bare); and err is
// none of the network's, net/http's, crypto/tls's or crypto/x509's (see
// netHTTPCause). Any other base, whose TLS configuration is not seen, is
// left as it is. It looks at base's configuration only after a failure.
func tlsCallbackRefusal(base http.RoundTripper, req *http.Request, err error) bool {
	tr, ok := base.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || req.URL == nil || req.URL.Scheme != "https" {
		return false
	}
	if cfg := tr.TLSClientConfig; cfg.VerifyPeerCertificate == nil && cfg.VerifyConnection == nil {
		return false
	}
	//lint:ignore SA1019 a caller's Transport may still set the deprecated dialers, which net/http still calls.
	if tr.DialTLSContext != nil || tr.DialTLS != nil || tr.Dial != nil || (tr.DialContext != nil && !sameFunc(tr.DialContext, new(net.Dialer).DialContext)) {
		return false
	}
	if tr.Proxy != nil {
		if !sameFunc(tr.Proxy, http.ProxyFromEnvironment) {
			return false
		}
		if u, err := http.ProxyFromEnvironment(req); u != nil || err != nil {
			return false
		}
	}
	return !netHTTPCause(err) && !strings.HasPrefix(err.Error(), "resilient: ")
}

// sameFunc reports whether f and g, two funcs of one type, run the same
// code: the same function, or method values of the same method (whatever
// their receivers). reflect does not promise that code found the same is
// one function; a false answer only leaves an error the network's.
func sameFunc(f, g any) bool {
	return reflect.ValueOf(f).Pointer() == reflect.ValueOf(g).Pointer()
}
