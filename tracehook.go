package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"reflect"
	"strings"
	"syscall"
)

// This file holds the caller's own failure of an attempt: an error returned
// by the Got1xxResponse hook of the ClientTrace in the request's context.

// got1xxFault returns the *RequestError of an attempt of req that failed
// with err because the Got1xxResponse hook of the ClientTrace in req's
// context, the caller's, returned an error: net/http then fails the
// request with that error inside its own (over HTTP/1, "net/http: HTTP/1.x
// transport connection broken: " and the hook's error; over HTTP/2, the
// stream error it resets the stream with, PROTOCOL_ERROR, whose cause is
// the hook's error). A retry calls the hook again, which the caller wrote
// to stop the request: the call fails at once, and counts against nothing.
// It returns nil when the trace has no such hook, or when err is not of
// that shape, or its cause is the network's or net/http's own (see
// netHTTPCause): a hook whose error reads as one of those is not told
// apart from them. It is asked only after a failure, so that a success
// costs no lookup of the trace.
func got1xxFault(req *http.Request, err error) *RequestError {
	trace := httptrace.ContextClientTrace(req.Context())
	if trace == nil || trace.Got1xxResponse == nil {
		return nil
	}
	cause := responseCause(err)
	if cause == nil || netHTTPCause(cause) {
		return nil
	}
	return &RequestError{Err: &hookError{err: err, hook: cause}}
}

// brokenPrefix begins net/http's error for an HTTP/1 request that failed
// on a connection it then closed, the failure's own error following it.
const brokenPrefix = "net/http: HTTP/1.x transport connection broken: "

// responseCause returns the error net/http failed a request with err for,
// while it read the response (a hook it called then included): the error
// that net/http's HTTP/1 transport wraps in its "connection broken" error,
// or the cause of the PROTOCOL_ERROR with which its HTTP/2 transport
// resets a stream. It returns nil for any other error.
func responseCause(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if msg, ok := strings.CutPrefix(e.Error(), brokenPrefix); ok {
			if inner := errors.Unwrap(e); inner != nil && inner.Error() == msg {
				return inner
			}
		}
		// HTTP/2's StreamError (net/http's bundled copy is unexported,
		// golang.org/x/net/http2's is not) does not unwrap to its cause.
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Struct {
			continue
		}
		// Fields of the struct itself, its Cause an interface and its
		// Code an integer (ErrCode, a uint32), as StreamError's are:
		// another error's Code and Cause (a Cause of another kind,
		// fields promoted through a nil embedded pointer) would make
		// reflect panic, and a Code that is a nil pointer, or an
		// interface holding one, its String method.
		cf, ok := v.Type().FieldByName("Cause")
		kf, ok2 := v.Type().FieldByName("Code")
		if !ok || !ok2 || len(cf.Index) != 1 || len(kf.Index) != 1 || cf.Type.Kind() != reflect.Interface || kf.Type.Kind() != reflect.Uint32 {
			continue
		}
		code, cause := v.Field(kf.Index[0]), v.Field(cf.Index[0])
		if !code.CanInterface() || !cause.CanInterface() || cause.IsNil() {
			continue
		}
		if s, ok := code.Interface().(interface{ String() string }); ok && s.String() == "PROTOCOL_ERROR" {
			if c, ok := cause.Interface().(error); ok {
				return c
			}
		}
	}
	return nil
}

// netHTTPCause reports whether cause, the error net/http failed a request
// for as it read the response (see responseCause), is the network's (a
// connection reset, closed or timed out, a record crypto/tls rejects) or
// net/http's own (a response it cannot parse, a connection it gave up): by
// the type of cause or of an error it wraps, one of net/http's,
// net/textproto's, golang.org/x/net/http2's, crypto/tls's or
// crypto/x509's, or by its words, net/http's or crypto/tls's (their
// prefixes, and the few errors net/http makes without one, those of an
// HTTP/2 response's malformed pseudo-headers and of an HTTP/1 response's
// Content-Length or declared trailers included). A hook that returns
// nil, as otelhttptrace's does, has every request "a hook": a server's
// broken answer read as the hook's would be neither retried nor counted
// by the host's breaker.
func netHTTPCause(cause error) bool {
	var netErr net.Error
	var errno syscall.Errno
	if errors.As(cause, &netErr) || errors.As(cause, &errno) || errors.As(cause, new(textproto.ProtocolError)) ||
		errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) || errors.Is(cause, net.ErrClosed) ||
		errors.Is(cause, os.ErrDeadlineExceeded) || errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		return true
	}
	if typeFrom(cause, func(pkg string) bool {
		switch pkg {
		case "net/http", "net/textproto", "golang.org/x/net/http2", "crypto/tls", "crypto/x509":
			return true
		}
		return false
	}) {
		return true
	}
	msg := cause.Error()
	for _, p := range [...]string{"http: ", "net/http: ", "http2: ", "malformed ", "tls: ", "x509: ", "readLoopPeekFailLocked: ", "write error: ",
		"bad Content-Length ", "invalid empty Content-Length ", "bad trailer key "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	switch msg {
	case "persistConn.readLoop exiting", "header list too large", "received from peer", "message too large",
		"1xx informational response with END_STREAM flag", "protocol error: headers after END_STREAM",
		"pseudo header field after regular", "mix of request and response pseudo headers":
		return true
	}
	return false
}

// typeFrom reports whether err, or an error it wraps (errors.Unwrap's
// chain), has a type, or points to one, of a package that inPkg accepts.
func typeFrom(err error, inPkg func(pkg string) bool) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if inPkg(t.PkgPath()) {
			return true
		}
	}
	return false
}

// hookError is the error of a request that a ClientTrace hook of the
// caller's stopped (see got1xxFault): err, net/http's, which unwraps to the
// hook's error over HTTP/1 but not over HTTP/2, whose stream error does not
// unwrap. It unwraps to both.
type hookError struct {
	err  error // net/http's
	hook error // the hook's
}

func (e *hookError) Error() string   { return e.err.Error() }
func (e *hookError) Unwrap() []error { return []error{e.err, e.hook} }
