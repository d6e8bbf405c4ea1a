package resilientotel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/internal/redact"
)

// redactedURL returns url.full for req: its URL's scheme, host and path,
// with REDACTED:REDACTED in place of user information, as the conventions
// say, and without the query string and the fragment, which may hold
// secrets. The path has the credentials an API carries in one REDACTED
// (see redact.Path), and those the caller sent on a request that led to
// req by a redirect (see redact.Redirected): a server may redirect to a
// path it built from the key a query carried ("/v1/keys/<key>/usage"),
// or an opaque URL (a Location of "https:api.test/v1/keys/<key>", which
// http.Client follows as it is), which has them REDACTED too; they are
// looked for before the cut (see redact.RedirectedCut). A URL one slash
// short or long ("https:/user:pw@host"), and one whose user name url.Parse
// read as its scheme ("KEY:@host", "alice:pa?pw@host"), lose that user
// information too (see redact.URLPath, redact.URLOpaque and
// redact.SchemeIsUser). A credential in a parameter
// after the host ("api.example.com;jsessionid=…", see redact.HostParams)
// is REDACTED.
func redactedURL(req *http.Request) string {
	if req == nil || req.URL == nil {
		return ""
	}
	u := req.URL
	opaque := redact.URLOpaque(u) // with the query a password ran into ("alice:pa?pw@host")
	v := url.URL{Scheme: u.Scheme, Opaque: redact.RedirectedCut(redact.SchemeOpaque(u.Scheme, opaque, "REDACTED:REDACTED@"), req, maxURLLen),
		Host: redact.HostParams(u.Host), Path: redact.RedirectedCut(redact.URLPath(u), req, maxURLLen), RawPath: u.RawPath}
	if u.Opaque != "" && redact.SchemeIsUser(u.Scheme, opaque) {
		v.Scheme = "" // a key url.Parse read as a scheme ("KEY:@api.example.com")
	}
	if v.Path != u.Path {
		v.RawPath = ""
	}
	if u.User != nil {
		v.User = url.UserPassword("REDACTED", "REDACTED")
	}
	if at := strings.LastIndexByte(v.Host, '@'); at >= 0 {
		// User information a caller put in the host by hand, which
		// net/http dials whole: written as the Transport's records
		// write it (redact.Userinfo), REDACTED@host.
		v.User, v.Host = url.User(redact.Placeholder), v.Host[at+1:]
	}
	return boundedUTF8(v.String(), maxURLLen)
}

// serverAddr returns server.address and server.port of req: the host and
// port of its URL, where the request is sent (a request made to an IP
// address with the Host header of a virtual host records the IP address,
// where the connection goes, as otelhttp does; the conventions name the
// Host header's, a departure the package documentation gives the reasons
// of); the port of the URL's scheme when the host has
// none; 0 when not known. User information put in the URL's host by hand
// is REDACTED (see redact.Userinfo), the brackets of an IPv6 address after
// it kept: "REDACTED@[::1]". The Host header names them only for a URL
// without a host (a request handed to an in-process router), and not when
// net/http cannot write it (user information put in req.Host by hand),
// which it sends empty; a bare IPv6 address there ("::1", which net/http
// sends as it is) is the address whole. A credential in a parameter after
// the host is REDACTED (see redact.HostParams). A host longer than any domain
// name is cut at maxHostLen.
func serverAddr(req *http.Request) (string, int) {
	host := ""
	if req.URL != nil {
		host = redact.Userinfo(req.URL.Host) // as the Transport records it
	}
	if host == "" && redact.ValidHost(req.Host) {
		host = req.Host
	}
	host = redact.HostParams(host) // "api.example.com;jsessionid=REDACTED"
	addr, portStr := host, ""
	// A colon before the last, after the last ']', is a bare IPv6
	// address's (a req.Host of "::1", which net/http sends as it is): it
	// has no port, its last colon being the address's.
	if i, j := strings.LastIndexByte(host, ':'), strings.LastIndexByte(host, ']'); i > j && strings.IndexByte(host[j+1:i], ':') < 0 {
		addr, portStr = host[:i], host[i+1:]
	}
	if len(addr) > 1 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		// An IPv6 literal's brackets: only a pair around the whole
		// address, not those of one after user information
		// ("REDACTED@[::1]", another host of its own).
		addr = addr[1 : len(addr)-1]
	}
	addr = boundedUTF8(addr, maxHostLen)
	if portStr != "" {
		if p, err := strconv.Atoi(portStr); err == nil && p > 0 && p < 65536 {
			return addr, p
		}
	}
	if req.URL != nil {
		switch strings.ToLower(req.URL.Scheme) {
		case "https":
			return addr, 443
		case "http":
			return addr, 80
		}
	}
	return addr, 0
}

// protocolVersion returns network.protocol.version of resp: "1.0", "1.1",
// "2" or "3", the versions a client speaks; "" for any other. The version
// of an HTTP/1 answer is the server's status line, which net/http's client
// takes from "HTTP/1.0" to "HTTP/9.9" whatever it sent (HTTP/1.1): a later
// HTTP/1 minor version is the server's own (RFC 9112), spoken as 1.1, and
// another major version is none the connection spoke. Recorded as written,
// a server would name a protocol never spoken, and multiply each status
// code's series of http.client.request.duration by up to 90. Over TLS, an
// answer that names HTTP/2 or HTTP/3 is believed only when the connection
// negotiated it (ALPN "h2" or "h3"): an HTTP/1 server cannot name a
// protocol it did not speak. Over plain text nothing tells an HTTP/1
// server's "HTTP/2.0" from unencrypted HTTP/2, and it is taken as written.
func protocolVersion(resp *http.Response) string {
	switch {
	case resp.ProtoMajor == 1 && resp.ProtoMinor == 0:
		return "1.0"
	case resp.ProtoMajor == 1 && resp.ProtoMinor > 0:
		return "1.1"
	case resp.ProtoMajor == 2 && resp.ProtoMinor == 0 && negotiated(resp, "h2"):
		return "2"
	case resp.ProtoMajor == 3 && resp.ProtoMinor == 0 && negotiated(resp, "h3"):
		return "3"
	}
	return ""
}

// negotiated reports whether resp came over a connection that could have
// spoken the protocol of ALPN id alpn: any without TLS, and one whose TLS
// handshake negotiated alpn.
func negotiated(resp *http.Response, alpn string) bool {
	return resp.TLS == nil || resp.TLS.NegotiatedProtocol == alpn
}

// Values of error.type for failures without a response (see the package
// documentation).
const (
	errTimeout         = "timeout"
	errCanceled        = "canceled"
	errConnRefused     = "connection_refused"
	errConnReset       = "connection_reset"
	errConnClosed      = "connection_closed"
	errDNS             = "dns_error"
	errTLS             = "tls_error"
	errCircuitOpen     = "circuit_open"
	errRateLimited     = "rate_limited_locally"
	errTooManyInFlight = "too_many_in_flight"
	errOther           = "_OTHER"
)

// errorType returns the error.type of a failure without a response. The
// bare http.ErrSkipAltProtocol of a base that declined an attempt is no
// failure, and is kept from it (see declinedErr); wrapped, it is _OTHER.
func errorType(err error) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		authErr x509.UnknownAuthorityError
		invErr  x509.CertificateInvalidError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, resilient.ErrCircuitOpen):
		return errCircuitOpen
	case errors.Is(err, resilient.ErrRateLimited):
		return errRateLimited
	case errors.Is(err, resilient.ErrTooManyInFlight):
		return errTooManyInFlight
	case errors.Is(err, resilient.ErrAttemptTimeout), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return errTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	case errors.As(err, &dnsErr):
		return errDNS
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr),
		errors.As(err, &invErr), errors.As(err, &recErr), errors.As(err, &alert), tlsAlert(err):
		return errTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return errConnRefused
	case errors.Is(err, syscall.ECONNRESET):
		return errConnReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EPIPE), serverClosedIdle(err):
		return errConnClosed
	}
	return errOther
}

// serverClosedIdle reports whether err, or an error it wraps, is
// net/http's "http: server closed idle connection": the server closed the
// connection before the request went out on it, a request net/http does not
// send again on a new one (a write without an idempotency key, one on a
// connection not reused). net/http does not export it: it is known by its
// message, compared whole, so that no text a server or a URL put in
// another error matches it.
func serverClosedIdle(err error) bool {
	return inChain(err, func(e error) bool { return e.Error() == errServerClosedIdleText })
}

// tlsAlert reports whether err, or an error it wraps, is a TLS alert over
// TCP: crypto/tls returns one it received as a *net.OpError whose Op is
// "remote error" ("remote error: tls: protocol version not supported"), and
// one it sent as "local error", around a type it does not export
// (tls.AlertError is QUIC's only). No other package of the standard
// library names an Op so.
func tlsAlert(err error) bool {
	return inChain(err, func(e error) bool {
		op, ok := e.(*net.OpError)
		return ok && (op.Op == "remote error" || op.Op == "local error")
	})
}

// inChain reports whether err, or an error it wraps (with Unwrap() error
// or Unwrap() []error), satisfies match. It asks the errors themselves, as
// errors.As does, but by a test that no type assertion states.
func inChain(err error, match func(error) bool) bool {
	for err != nil {
		if match(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if inChain(e, match) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// errServerClosedIdleText is the message of net/http's errServerClosedIdle.
const errServerClosedIdleText = "http: server closed idle connection"

// isTimeout reports whether err, or an error it wraps, has a Timeout method
// that returns true.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Bounds of the attribute values taken from a request's URL, which a
// server names when it redirects (net/http takes a Location header of up
// to 10 MB): the spans would carry them to the exporter, and the metrics
// keep each server.address they see for the life of the process. A method
// not known is the caller's, but may be relayed from a client of the
// caller's own (an inbound request's, of up to net/http's 1 MB header
// limit): http.request.method_original is bounded too, far above the
// longest registered method (UPDATEREDIRECTREF, 17 bytes).
const (
	maxURLLen    = redact.MaxPath // url.full
	maxHostLen   = redact.MaxHost // server.address
	maxMethodLen = 255            // http.request.method_original
)

// boundedUTF8 returns s cut at n bytes (see redact.Truncate), with each run
// of bytes that are no UTF-8 replaced by U+FFFD: s itself, cut, when it is
// valid. An attribute value reaches OTLP as a protobuf string, which must be
// UTF-8: one value that is not makes the exporter drop the whole batch of
// spans or metrics it is in, and, kept in a metric series, every metrics
// export after it. A URL's host and an opaque URL are the server's to
// choose when it redirects (url.Parse keeps their bytes past ASCII as they
// are, and unescapes a host's "%ff"), and a method the caller's.
func boundedUTF8(s string, n int) string {
	s = redact.Truncate(s, n)
	if utf8.ValidString(s) {
		return s
	}
	return redact.Truncate(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// peerAddr returns network.peer.address and network.peer.port of a
// connection whose remote address is a: its IP address (with the zone of
// an IPv6 one) and its port, or the name of a Unix socket and 0; "" for
// any other address, such as net.Pipe's, which names no peer.
func peerAddr(a net.Addr) (string, int) {
	var (
		ip   net.IP
		zone string
		port int
	)
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			return "", 0
		}
		ip, zone, port = a.IP, a.Zone, a.Port
	case *net.UDPAddr: // HTTP/3
		if a == nil {
			return "", 0
		}
		ip, zone, port = a.IP, a.Zone, a.Port
	case *net.UnixAddr:
		if a == nil {
			return "", 0
		}
		return a.Name, 0
	default:
		return "", 0
	}
	if len(ip) == 0 {
		return "", 0
	}
	if zone != "" {
		return ip.String() + "%" + zone, port
	}
	return ip.String(), port
}
