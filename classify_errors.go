package resilient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// This file holds the classification of the network errors of attempts that
// got no response.

// classifyErr classifies a network error, and tells whether it proves that
// the request never left this process.
func classifyErr(err error) (cl Class, neverSent bool) {
	if err == nil || err == errNilResponse {
		// No response and no error: a broken RoundTripper below, which
		// a retry would only run again (a plain client fails at once).
		return Permanent, false
	}
	if err == http.ErrSkipAltProtocol {
		// A base registered as an alternate protocol (http2's, say)
		// declined the request before sending it, for the
		// http.Transport above to send it itself.
		return Permanent, true
	}
	var reqErr *RequestError
	var lost *lostWriteError
	switch {
	case errors.As(err, &lost):
		// A call below (a Transport given this one's attempts) ended
		// with an error that reads as never sent after an earlier
		// attempt of its write may have been processed: whatever its
		// class, it proves nothing unsent.
		cl, _ = classifyErr(lost.err)
		return cl, false
	case errors.As(err, &reqErr) && declinedMistake(reqErr):
		// The caller's mistake the classifier made of the bare sentinel
		// of a base that declined the request (see requestFault): the
		// base sent nothing, and neither does net/http, which refuses
		// such a request (or never sees it: a retry, a hedged copy).
		return Permanent, !reqErr.mayHaveBeenSent()
	case errors.Is(err, http.ErrSkipAltProtocol):
		// The sentinel wrapped by a middleware, or a Transport below
		// whose retry the base declined: net/http does not send the
		// request itself for it (it compares with ==), and every
		// attempt gets the same (a plain client fails at once). What
		// else the chain holds may have been sent.
		return Permanent, false
	case errors.Is(err, ErrCircuitOpen), errors.Is(err, ErrRateLimited), errors.Is(err, ErrTooManyInFlight):
		return Permanent, true
	case errors.As(err, &reqErr):
		// The caller's mistake: no retry would mend it. The server
		// could not act on it, unless its body outran its
		// ContentLength, or failed only past it: the bytes declared
		// went out whole first.
		return Permanent, !reqErr.mayHaveBeenSent()
	case errors.Is(err, ErrAttemptTimeout):
		return Transient, false
	}
	// TLS certificate problems do not heal by retrying, nor does a
	// server that does not speak TLS at all (an https URL for an HTTP
	// port: the scheme is wrong).
	var (
		unknownAuth  x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		certInvalid  x509.CertificateInvalidError
		verification *tls.CertificateVerificationError
		notTLS       tls.RecordHeaderError
	)
	if errors.As(err, &unknownAuth) || errors.As(err, &hostnameErr) ||
		errors.As(err, &certInvalid) || errors.As(err, &verification) {
		return Permanent, true
	}
	if errors.As(err, &notTLS) {
		// Its Conn is set when the server's first record did not look
		// like TLS: the handshake never ended, nothing was sent. Without
		// it the record may have come after the handshake (a record of
		// another version or oversized, a middlebox's), after the
		// request was written.
		return Permanent, notTLS.Conn != nil
	}
	var alert *net.OpError
	if errors.As(err, &alert) && alert.Op == "remote error" && alert.Err != nil && refusedHandshake(alert.Err.Error()) {
		// The server refused the TLS handshake for what this client
		// offers (its certificate, none, its versions, the name): a
		// retry offers the same. Under TLS 1.3 the alert may come after
		// the request was written.
		return Permanent, false
	}
	if urlParseError(err) {
		// A URL that does not parse, which net/http returns as it is
		// from the base's Proxy func (a setting of the caller's it
		// parses, whatever its words), before anything is dialed:
		// every attempt fails alike, as a plain client's one does.
		// (Under a base with no such func, the server's words, parsed
		// after the request was sent: see classifier.classify.)
		return Permanent, true
	}
	if proxyRefused(err) {
		// The proxy refused the tunnel to the host: the request never
		// reached it, and a retry gets the same answer.
		return Permanent, true
	}
	// net/http's own words, outside the quotes in which it puts what a
	// server (or the URL) said: a server that answers a processed write
	// with a header that reads "stream error: stream ID 1;
	// REFUSED_STREAM" must not have it resent as unprocessed.
	msg := unquoted(err.Error())
	for _, s := range permanentErrTexts {
		if strings.Contains(msg, s) {
			return Permanent, true
		}
	}
	for _, s := range notHTTPErrTexts {
		if strings.Contains(msg, s) {
			// The server does not speak HTTP/1.x (an http URL for a
			// TLS port, or another protocol's): the URL is wrong; or
			// its headers are more than the client reads. No retry
			// mends it, but the request was written.
			return Permanent, false
		}
	}
	if refusedH2Header(msg) {
		// The HTTP/2 twin of the framing above: the server's header
		// block for this stream, which it sends again to a retry.
		return Permanent, false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound && !dnsErr.IsTemporary && !dnsErr.IsTimeout {
			// The name does not exist (NXDOMAIN): a wrong host in the
			// URL, which no retry mends; a plain client fails at once
			// too.
			return Permanent, true
		}
		return Transient, true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if undialable(opErr) {
			// The address cannot be dialed at all (an IPv6
			// link-local address without its zone, or with a zone
			// no interface has; a Unix socket's path too long): the
			// URL or the base's dialer is wrong, and a plain
			// client fails at once too.
			return Permanent, true
		}
		return Transient, true
	}
	if opErr != nil && opErr.Op == "proxyconnect" {
		// net/http's wrapping of the dial of the proxy: a proxy set at
		// such an address fails every request alike.
		var dial *net.OpError
		if errors.As(opErr.Err, &dial) && dial.Op == "dial" && undialable(dial) {
			return Permanent, true
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return Transient, true
	}
	if refusedStream(msg) || goAwayAbove(msg) {
		// HTTP/2: the server did not process the stream (RFC 9113, 8.7).
		return Transient, true
	}
	// Resets, EOF before a response, timeouts, GOAWAY and the rest.
	return Transient, false
}

// unquoted returns msg without its quoted strings (each "…", its escapes
// included, as fmt's %q writes them), where net/http's errors put what a
// server sent (a header's value, a status line, a GOAWAY's debug data) and
// url.Error puts the URL. The rest is net/http's own words. An unterminated
// quote runs to the end.
func unquoted(msg string) string {
	i := strings.IndexByte(msg, '"')
	if i < 0 {
		return msg
	}
	b := make([]byte, 0, len(msg))
	for i >= 0 {
		b = append(b, msg[:i]...)
		j := quotedEnd(msg, i)
		if j < 0 {
			return string(b)
		}
		msg = msg[j+1:]
		i = strings.IndexByte(msg, '"')
	}
	return string(append(b, msg...))
}

// refusedStream reports whether msg is net/http's error for an HTTP/2
// stream the server reset with REFUSED_STREAM ("stream error: stream ID 3;
// REFUSED_STREAM", alone or within another error of net/http's), which
// proves the request unprocessed. msg is unquoted: a server's words do not
// count.
// A GOAWAY's error is not one, whatever its code and the debug data it
// quotes: the streams up to its last stream ID may have been processed
// (RFC 9113, 6.8).
func refusedStream(msg string) bool {
	const streamErr = "stream error: stream ID "
	if strings.Contains(msg, "server sent GOAWAY") {
		return false
	}
	i := strings.Index(msg, streamErr)
	return i >= 0 && strings.HasPrefix(strings.TrimLeft(msg[i+len(streamErr):], "0123456789"), "; REFUSED_STREAM")
}

// refusedH2Header reports whether msg is net/http's error for an HTTP/2
// stream whose response header block it refused ("stream error: stream ID
// 1; PROTOCOL_ERROR; invalid header field value for …", alone or within
// another error of net/http's; see h2HeaderCauses): the server's framing
// of its answer to this stream, as HTTP/1's "malformed MIME header" is
// (see notHTTPErrTexts), which a retry gets again. msg is unquoted: a
// server's words do not count. A connection's error ("connection error:
// PROTOCOL_ERROR", COMPRESSION_ERROR) is not one: it fails every stream
// of the connection, whose other answers may be whole.
func refusedH2Header(msg string) bool {
	const streamErr = "stream error: stream ID "
	i := strings.Index(msg, streamErr)
	if i < 0 {
		return false
	}
	cause, ok := strings.CutPrefix(strings.TrimLeft(msg[i+len(streamErr):], "0123456789"), "; PROTOCOL_ERROR; ")
	if !ok {
		return false
	}
	for _, s := range h2HeaderCauses {
		if strings.HasPrefix(cause, s) {
			return true
		}
	}
	return false
}

// h2HeaderCauses are the causes net/http's HTTP/2 client (and
// golang.org/x/net/http2's) gives a stream whose response header block it
// refuses, read from the whole block: a control byte in a value, a name
// not lower-case or empty, a pseudo-header after a regular field, unknown
// or twice, no :status or one not a number, a 1xx that ends the stream.
var h2HeaderCauses = [...]string{
	"invalid header field value for ",
	"invalid header field name ",
	"pseudo header field after regular",
	"invalid pseudo-header ",
	"duplicate pseudo-header ",
	"mix of request and response pseudo headers",
	"malformed response from server: ",
	"1xx informational response with END_STREAM flag",
}

// goAwayAbove reports whether msg is net/http's error for an HTTP/2 stream
// above the last stream ID of a GOAWAY the server sent ("http2: Transport
// received Server's graceful shutdown GOAWAY", alone or within another
// error of net/http's), which proves the request sent on it unprocessed
// (RFC 9113, 6.8 and 8.7: a server draining for a restart sends one).
// msg is unquoted: a server's words (a GOAWAY's debug data) do not count.
// The error of a connection closed after a GOAWAY ("server sent GOAWAY and
// closed the connection") is not one: net/http gives it to the streams up
// to the last stream ID, which may have been processed. Nor is net/http's
// error for the first stream of a connection under a GOAWAY with an error
// code (see goAwayFirstStream), which ends its own resends.
func goAwayAbove(msg string) bool {
	return strings.Contains(msg, "http2: Transport received Server's graceful shutdown GOAWAY") &&
		!strings.Contains(msg, "server sent GOAWAY")
}

// goAwayFirstStream reports whether err is net/http's error for the first
// stream of an HTTP/2 connection above the last stream ID of a GOAWAY the
// server sent with an error code ("http2: Transport received GOAWAY from
// server ErrCode:ENHANCE_YOUR_CALM": a server shedding load), which says
// that the server did not process it (RFC 9113, 8.7), and which net/http
// does not resend. It proves the request unsent only when that stream is
// the only one net/http sent it on (see writeTrace.oneConnection): with
// GetBody, or without a body, net/http may have resent it on its own from
// an earlier stream the server processed and reset. msg is unquoted, as
// for goAwayAbove.
func goAwayFirstStream(err error) bool {
	if lostBelow(err) {
		return false // its text is a call's below, whose earlier attempt may have been processed
	}
	msg := unquoted(err.Error())
	return strings.Contains(msg, "http2: Transport received GOAWAY from server ErrCode:") &&
		!strings.Contains(msg, "server sent GOAWAY")
}

// refusedUnresent reports whether err is HTTP/2's refusal of a stream
// (REFUSED_STREAM, or a GOAWAY whose last stream ID is below it: see
// goAwayAbove) that net/http could not resend itself, for want of GetBody
// ("http2: Transport: cannot retry err [stream error: stream ID 1;
// REFUSED_STREAM] after Request.Body was written"): the stream refused,
// unprocessed, is the only one the request went out on. (With GetBody,
// net/http resends a refused stream itself, and a bare REFUSED_STREAM
// that comes back may end a series whose first stream was reset after it
// was processed.)
func refusedUnresent(err error) bool {
	if lostBelow(err) {
		return false // its text is a call's below, whose earlier attempt may have been processed
	}
	msg := unquoted(err.Error())
	return strings.Contains(msg, "http2: Transport: cannot retry err [") && (refusedStream(msg) || goAwayAbove(msg))
}

// undialable reports whether dial, a dial's error, is the refusal (EINVAL)
// of an address that no dial reaches: an IPv6 link-local address without
// its zone, or with a zone no interface has (the caller's URL or proxy),
// or a Unix socket's path longer than a socket address holds, which Go
// refuses before any connect (a base's DialContext set to the socket).
// EINVAL for any other address is no such proof: OpenBSD refuses a
// connection so, and macOS a connection to itself (a port nothing listens
// on yet, while the server restarts), which are retried as a refused dial
// is.
func undialable(dial *net.OpError) bool {
	if !errors.Is(dial.Err, syscall.EINVAL) {
		return false
	}
	switch a := dial.Addr.(type) {
	case *net.TCPAddr:
		return a.IP.To4() == nil && (a.IP.IsLinkLocalUnicast() || a.IP.IsLinkLocalMulticast() || a.IP.IsInterfaceLocalMulticast())
	case *net.UnixAddr:
		return true
	}
	return false
}

// permanentErrTexts are net/http's messages for requests that can never be
// sent as they are (its error types for them are unexported). Its refusal
// of a header is told by its "net/http: " prefix: the HTTP/2 client's error
// for a response header field it rejects ("stream error: stream ID 1;
// PROTOCOL_ERROR; invalid header field value for …") answers a request the
// server received, and proves nothing unsent. "invalid proxy address" is
// http.ProxyFromEnvironment's (http.DefaultTransport's Proxy) for an
// HTTP_PROXY or HTTPS_PROXY that does not parse: read once a process, it
// fails every request the same way, before anything is dialed.
var permanentErrTexts = [...]string{
	"unsupported protocol scheme",
	"net/http: invalid header field",
	"invalid method",
	"nil Request.URL",
	"no Host in request URL",
	"invalid URL",
	"invalid port",
	"server gave HTTP response to HTTPS client",
	"invalid proxy address",
}

// refusedHandshake reports whether alert, the text of a TLS alert the server
// sent ("tls: certificate required"), refuses the handshake for what the
// client offered: no retry offers anything else. The alerts of a failure
// on the way or of the server's own ("internal error", "bad record MAC")
// are not among them.
func refusedHandshake(alert string) bool {
	name, ok := strings.CutPrefix(alert, "tls: ")
	if !ok {
		return false
	}
	switch name {
	case "handshake failure", "bad certificate", "unsupported certificate",
		"revoked certificate", "expired certificate", "unknown certificate",
		"unknown certificate authority", "access denied",
		"protocol version not supported", "insufficient security level",
		"certificate required", "unrecognized name", "no application protocol":
		return true
	}
	return false
}

// proxyRefused reports whether err is net/http's error for a proxy that
// refused to open a tunnel to the host for want of the proxy's credentials,
// by its policy, or because it opens none: an HTTP proxy's 4xx to a
// CONNECT (for an https host; 407, 403, a 400, 404 or 405 for the target
// or the method), or its 501 or 505, whose message, at the end of the
// chain, is the proxy's reason phrase alone (an http request through a
// proxy gets that answer as its response), or followed by the proxy's own
// explanation in parentheses ("Proxy Authentication Required ( Forefront
// TMG requires authorization … )", as Microsoft's proxies word it); or a
// SOCKS5 proxy's refusal of the client's credentials, or none, or of the
// connection by its rules.
// A proxy's 408 and 429, and its other 5xx (502, 503 and 504: the host is
// unreachable now), are not refusals: a retry may be let through.
func proxyRefused(err error) bool {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	switch msg := err.Error(); msg {
	case "no acceptable authentication methods", "username/password authentication failed",
		"unknown error connection not allowed by ruleset":
		return true
	default:
		for code := 400; code <= http.StatusHTTPVersionNotSupported; code++ {
			switch {
			case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
				continue
			case code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported:
				continue
			}
			if text := http.StatusText(code); text != "" && (msg == text || strings.HasPrefix(msg, text+" (")) {
				return true
			}
		}
	}
	return false
}

// cutHeaders reports whether err, the error of an attempt, which
// classifyErr reads as the server's framing, may be a connection cut
// while the server wrote its header block, which a retry on a fresh
// connection does not meet: a status line cut short, read as one that is
// not HTTP ("HTTP/1.") or whose code is not three digits ("20"), the part
// that came telling it from a server that does not speak HTTP; or a line
// cut in a header's name, net/textproto's "malformed MIME header: missing
// colon", which quotes the part that came as it quotes a whole line
// without a colon. Only a call's first such failure is retried, on
// whichever attempt it comes (after a 503 too): a second is taken for the
// server's framing (see attemptState.cutRetried). A *RequestError is
// never one, whatever its cause quotes: the caller's body failed with the
// words (a multipart upload relayed part by part, a part's header without
// its colon), and no retry mends it. The line is read as net/http quoted
// it, before redaction: redacted, a code or a line holding a '?', a '#'
// or an '@' is cut there ("2?x" reads "2", "HTTP/1.1#x" "HTTP/1.1").
func cutHeaders(err error) bool {
	if errors.As(err, new(*RequestError)) {
		return false
	}
	var red *redactedError
	if errors.As(err, &red) {
		err = red.err
	}
	msg := err.Error()
	if v, ok := quotedAfter(msg, "malformed HTTP response "); ok {
		return v != "" && (strings.HasPrefix("HTTP/1.1", v) || strings.HasPrefix("HTTP/1.0", v))
	}
	if v, ok := quotedAfter(msg, "malformed HTTP status code "); ok {
		return len(v) < 3 && strings.Trim(v, "0123456789") == ""
	}
	return strings.Contains(unquoted(msg), "malformed MIME header: missing colon")
}

// quotedAfter returns the Go-quoted string that follows the first
// occurrence of prefix in msg, and whether there is one.
func quotedAfter(msg, prefix string) (string, bool) {
	i := strings.Index(msg, prefix)
	if i < 0 {
		return "", false
	}
	q, err := strconv.QuotedPrefix(msg[i+len(prefix):])
	if err != nil {
		return "", false
	}
	v, err := strconv.Unquote(q)
	return v, err == nil
}

// urlParseError reports whether err holds url.Parse's *url.Error (Op
// "parse").
func urlParseError(err error) bool {
	var parseErr *url.Error
	return errors.As(err, &parseErr) && parseErr.Op == "parse"
}

// proxyFuncOf reports whether base is net/http's Transport with a Proxy
// func, whose error for a setting that does not parse net/http returns as
// it is, before anything is dialed.
func proxyFuncOf(base http.RoundTripper) bool {
	tr, ok := base.(*http.Transport)
	return ok && tr.Proxy != nil
}

// notHTTPErrTexts are net/http's messages for an answer it does not read:
// one that is not an HTTP/1.x response at all (the first line of a TLS
// alert, of an SSH or a Redis server, quoted), whose headers pass the
// client's limit (Transport.MaxResponseHeaderBytes, HTTP/2's header list
// size), informational (1xx) responses included, a flood of which ends in
// the same error over HTTP/1 ("header list too large" over HTTP/2, "too
// many 1xx informational responses" before Go 1.24 and from
// golang.org/x/net/http2), or whose framing it refuses: a Content-Length
// that is not a number or is empty, two that differ, a Transfer-Encoding
// it does not speak, a trailer no message may declare (Content-Length,
// Transfer-Encoding, Trailer). Each is read from a whole header block,
// which a connection cut short ends with io.ErrUnexpectedEOF instead; the
// server sends the same to a retry. They prove nothing about whether the
// request was processed.
var notHTTPErrTexts = [...]string{
	"malformed HTTP response",
	"malformed HTTP status code",
	"malformed HTTP version",
	"server response headers exceeded",
	"response header list larger than advertised limit",
	"header list too large",
	"too many 1xx informational responses",
	"malformed MIME header",
	"bad Content-Length",
	"invalid empty Content-Length",
	"bad trailer key",
	"message cannot contain multiple Content-Length headers",
	"unsupported transfer encoding",
	"too many transfer encodings",
}
