package resilient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

// Class is the decision about one attempt's result.
type Class int

const (
	// Success means the call is done: a response below 400. 3xx responses
	// are successes too: they are never retried.
	Success Class = iota
	// Transient means a retry with backoff can help: 408, 500, 502, 503,
	// 504, 529, a retryable envelope code or a network error.
	Transient
	// Throttled means the server asked the client to slow down: retry
	// after the server's wait (Retry-After or the rate-limit reset).
	Throttled
	// Permanent means a retry cannot help until something is fixed.
	Permanent
)

// String returns the class's lower-case name, as used in log records.
func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Retryable reports whether the class may be retried.
func (c Class) Retryable() bool { return c == Transient || c == Throttled }

// A Classifier decides the class of one attempt. It is called once per
// attempt with the response (nil on a network error), the parsed error
// (nil for a response below 400; without a recognized envelope, it holds
// the status and the request id of the headers only), the network error
// (nil when there is a response) and def, the default decision, vendor
// hints (Stripe-Should-Retry, X-Should-Retry) included: a Classifier
// decides after them. Returning def keeps the default; a Classifier that
// handles only some cases composes with the default by returning def for
// the others:
//
//	resilient.WithClassifier(func(resp *http.Response, e *resilient.APIError, err error, def resilient.Class) resilient.Class {
//		if resp != nil && resp.StatusCode == http.StatusConflict {
//			return resilient.Transient // this API's 409 means "try again"
//		}
//		return def
//	})
//
// The method-safety rule still applies to what the Classifier decides: a
// write without an idempotency key is not retried after it may have been
// sent, whatever its class.
type Classifier func(resp *http.Response, apiErr *APIError, err error, def Class) Class

// WithClassifier replaces the decision with c, which receives the default
// decision and may keep it. A nil c restores the default.
func WithClassifier(c Classifier) Option {
	return func(cfg *config) { cfg.classifier = c }
}

// WithCodes adds envelope codes to the built-in tables, or overrides their
// class. Codes are matched exactly, except that an entry for one of the
// common throttling codes of DefaultCodes, under any of its spellings,
// also applies to the spellings it matches (any case, '-' for '_') that
// have no entry of their own; the spelling DefaultCodes lists wins over
// the others. WithCodes copies codes.
func WithCodes(codes map[string]Class) Option {
	cp := maps.Clone(codes)
	return func(c *config) {
		perTransport(c, "WithCodes")
		if c.codes == nil {
			c.codes = make(map[string]Class, len(cp))
		}
		maps.Copy(c.codes, cp)
	}
}

// WithMaxPeek sets how much of an error body is read to find its envelope
// (default 64 KiB). The caller still reads every byte of the body: the
// bytes read, then the rest. The read is bounded in time too, by the
// attempt's deadline (WithAttemptTimeout, WithMaxElapsed, the context's)
// and by 2 s of a body that stalls: a body cut there yields the bytes
// read, then the error that cut it. Zero turns envelope parsing off:
// responses are classified by status alone. It panics if n is negative.
func WithMaxPeek(n int64) Option {
	mustNotBeNegative("WithMaxPeek", n)
	return func(c *config) {
		perTransport(c, "WithMaxPeek")
		c.maxPeek = n
	}
}

// classifier is the innermost middleware: it classifies each attempt's
// result once and records it in the attempt's state.
type classifier struct {
	next     hop
	codes    codeTable
	custom   Classifier
	maxPeek  int64
	observed bool // someone reads request ids of successes
	// resets says that the Transport has no rate limiter: the classifier
	// reads a throttled answer's quota reset for its retry's wait, which
	// the limiter sets otherwise (see rateLimitTransport.learn).
	resets  bool
	parsers []RateLimitParser // WithRateLimitParser, for resets
}

func (c *classifier) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.roundTripAttempt(req, nil)
}

func (c *classifier) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	if st != nil && st.run != nil {
		// A hedged copy, about to be sent: numbered among those sent,
		// or not sent at all once its attempt is decided.
		if err := st.run.wire(st); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	resp, err := saneResult(c.next.roundTrip(req, st))
	if err != nil {
		err = redactRequestError(requestFault(req, err), req.URL.Host) // before any layer records it
	}
	if st != nil {
		if st.bufferMax > 0 {
			return c.buffered(req, st, resp, err) // WithBufferedResponse
		}
		c.classify(st, resp, err, time.Now)
	}
	return resp, err
}

// errNilResponse replaces the nil error of a RoundTripper that returned
// neither a response nor an error.
var errNilResponse = errors.New("resilient: RoundTripper returned a nil response and a nil error")

// saneResult enforces the RoundTripper contract on what the base returned,
// so that every layer above sees exactly one of a response and an error, and
// a response with a body: a response returned with an error is closed and
// dropped, a nil response with a nil error becomes errNilResponse, and a nil
// Body becomes http.NoBody (as http.Client does).
func saneResult(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case resp == nil:
		return nil, errNilResponse
	case resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, nil
}

// classify fills st from the attempt's result.
func (c *classifier) classify(st *attemptState, resp *http.Response, err error, now func() time.Time) {
	st.classified = true
	custom := c.custom
	if st.callCfg != nil {
		custom = st.callCfg.classifier // WithCallOptions may change it
	}
	if err != nil || resp == nil {
		st.class, st.neverSent = classifyErr(err)
		if custom != nil {
			st.class = custom(nil, nil, err, st.class)
		}
		return
	}
	if resp.StatusCode < 400 {
		st.class = Success
		if c.observed {
			st.requestID = headerRequestID(resp.Header)
		}
		if custom != nil {
			st.class = callClassifier(custom, resp, nil, nil, Success)
		}
		return
	}
	var env envelope
	parsed := false
	if c.maxPeek > 0 {
		stop := abortAfter(resp.Body, st.armed, maxReadWait) // bounded in time as in bytes
		env, parsed = peekEnvelope(resp, c.maxPeek)
		stop()
	}
	if resp.StatusCode == http.StatusForbidden && !rateLimited403(resp.Header) {
		// A 403 is a rate limit's by its headers (see rateLimited403),
		// which a response built by hand below the Transport may spell
		// otherwise: read them as net/http would have spelled them.
		canonicalRateHeaders(resp)
	}
	st.class = decide(resp.StatusCode, resp.Header, &env, parsed, c.codes.lookup)
	st.retryAfter, st.hasRetryAfter = serverWait(resp.StatusCode, resp.Header, st.class, now)
	st.apiErr = newAPIError(resp, &env, parsed, st.class, st.retryAfter)
	if st.lost && !st.class.Retryable() && keyHeld(resp.StatusCode, st.apiErr) {
		// The key is held by an earlier attempt of the call: see keyHeld.
		st.class, st.apiErr.Retryable = Transient, true
	}
	st.code = st.apiErr.Code
	st.requestID = st.apiErr.RequestID
	if custom != nil {
		st.class = callClassifier(custom, resp, st.apiErr, nil, st.class)
		st.apiErr.Retryable = st.class.Retryable()
	}
	if c.resets && st.class == Throttled && !st.hasRetryAfter {
		waitForAnnouncedReset(st, resp, c.parsers, now())
	}
}

// callClassifier returns custom's class for an attempt's response; when
// custom panics, the response's body is closed on the way out (see
// closeOnPanic).
func callClassifier(custom Classifier, resp *http.Response, apiErr *APIError, err error, def Class) Class {
	done := false
	defer closeOnPanic(resp, &done)
	cl := custom(resp, apiErr, err, def)
	done = true
	return cl
}

// decide applies the precedence, from the strongest:
//
//  1. a vendor's retry hint (Stripe-Should-Retry, X-Should-Retry): false
//     is Permanent, true Transient (Throttled stays Throttled);
//  2. the envelope's retryable flag, likewise;
//  3. a 429 is Throttled, whatever its code;
//  4. a known code;
//  5. a 403 with Retry-After or X-RateLimit-Remaining: 0 is Throttled
//     (GitHub's rate limits);
//  6. the status.
func decide(status int, h http.Header, env *envelope, parsed bool, lookup func(string) (Class, bool)) Class {
	cl := statusClass(status)
	if status == http.StatusForbidden && rateLimited403(h) {
		cl = Throttled
	}
	if parsed {
		if known, ok := lookup(env.code); ok {
			cl = known
		} else if known, ok := lookup(env.reason); ok {
			// A Google error whose status names no class
			// (PERMISSION_DENIED): its reason may.
			cl = known
		}
	}
	if status == http.StatusTooManyRequests {
		cl = Throttled // whatever its code: the server asked for a pause
	}
	if parsed {
		cl = applyRetryable(cl, env.retryable)
	}
	return applyRetryable(cl, retryHint(h))
}

// applyRetryable applies an explicit answer to "retry this?" (1 yes, 0 no,
// -1 not said) to cl.
func applyRetryable(cl Class, retryable int8) Class {
	switch retryable {
	case 1:
		if cl != Throttled {
			cl = Transient
		}
	case 0:
		cl = Permanent
	}
	return cl
}

// statusClass is the decision by status alone.
// statusOverloaded is the status Anthropic's API answers when it is
// overloaded ("overloaded_error"): not a standard status, and a passing one.
const statusOverloaded = 529

func statusClass(status int) Class {
	switch {
	case status < 400:
		return Success
	case status == http.StatusTooManyRequests:
		return Throttled
	case status == http.StatusRequestTimeout,
		status == http.StatusInternalServerError,
		status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable,
		status == http.StatusGatewayTimeout,
		status == statusOverloaded:
		return Transient
	}
	return Permanent
}

// classifyErr classifies a network error, and tells whether it proves that
// the request never left this process.
func classifyErr(err error) (cl Class, neverSent bool) {
	if err == nil || err == errNilResponse {
		// No response and no error: a broken RoundTripper below, which
		// a retry would only run again (a plain client fails at once).
		return Permanent, false
	}
	var reqErr *RequestError
	switch {
	case errors.Is(err, ErrCircuitOpen), errors.Is(err, ErrRateLimited), errors.Is(err, ErrTooManyInFlight):
		return Permanent, true
	case errors.As(err, &reqErr):
		// The caller's mistake: no retry would mend it. The server
		// could not act on it, unless its body outran its
		// ContentLength: the bytes declared went out whole first.
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
		errors.As(err, &certInvalid) || errors.As(err, &verification) ||
		errors.As(err, &notTLS) {
		return Permanent, true
	}
	var alert *net.OpError
	if errors.As(err, &alert) && alert.Op == "remote error" && alert.Err != nil && refusedHandshake(alert.Err.Error()) {
		// The server refused the TLS handshake for what this client
		// offers (its certificate, none, its versions, the name): a
		// retry offers the same. Under TLS 1.3 the alert may come after
		// the request was written.
		return Permanent, false
	}
	if proxyRefused(err) {
		// The proxy refused the tunnel to the host: the request never
		// reached it, and a retry gets the same answer.
		return Permanent, true
	}
	msg := err.Error()
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
		return Transient, true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return Transient, true
	}
	if refusedStream(msg) {
		// HTTP/2: the server did not process the stream (RFC 9113, 8.7).
		return Transient, true
	}
	// Resets, EOF before a response, timeouts, GOAWAY and the rest.
	return Transient, false
}

// refusedStream reports whether msg is net/http's error for an HTTP/2
// stream the server reset with REFUSED_STREAM ("stream error: stream ID 3;
// REFUSED_STREAM", alone or quoted), which proves the request unprocessed.
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

// permanentErrTexts are net/http's messages for requests that can never be
// sent as they are (its error types for them are unexported).
var permanentErrTexts = [...]string{
	"unsupported protocol scheme",
	"invalid header field",
	"invalid method",
	"nil Request.URL",
	"no Host in request URL",
	"invalid URL",
	"invalid port",
	"server gave HTTP response to HTTPS client",
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
// refused to open a tunnel to the host for want of the proxy's credentials
// or by its policy: an HTTP proxy's 407 or 403 to a CONNECT (for an https
// host), whose message, at the end of the chain, is the proxy's reason
// phrase alone (an http request through a proxy gets the 407 or 403 as its
// response), or a SOCKS5 proxy's refusal of the client's credentials, or
// none, or of the connection by its rules.
func proxyRefused(err error) bool {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	switch err.Error() {
	case "Proxy Authentication Required", "Forbidden",
		"no acceptable authentication methods", "username/password authentication failed",
		"unknown error connection not allowed by ruleset":
		return true
	}
	return false
}

// notHTTPErrTexts are net/http's messages for an answer it does not read:
// one that is not an HTTP/1.x response at all (the first line of a TLS
// alert, of an SSH or a Redis server, quoted), or whose headers pass the
// client's limit (Transport.MaxResponseHeaderBytes, HTTP/2's header list
// size), which the server sends again to a retry. They prove nothing
// about whether the request was processed.
var notHTTPErrTexts = [...]string{
	"malformed HTTP response",
	"malformed HTTP status code",
	"malformed HTTP version",
	"server response headers exceeded",
	"response header list larger than advertised limit",
}

// APIError is an error response of an API, read from its status, headers
// and JSON error envelope. Its Details are kept for the caller and never
// logged by the Transport.
type APIError struct {
	StatusCode int             // the response's HTTP status
	Code       string          // the envelope's stable code; "" when none
	Message    string          // human-readable; may change between API versions
	Details    json.RawMessage // the envelope's details, verbatim; nil when none
	RequestID  string          // from the body, else X-Request-Id, Request-Id, X-Correlation-Id, X-GitHub-Request-Id, x-amzn-RequestId or x-amz-request-id
	Retryable  bool            // whether the Transport's default decision retries it
	RetryAfter time.Duration   // the server's Retry-After (for a rate-limited 403, the time to X-RateLimit-Reset); 0 when it gave none

	// Dialect names the envelope the code was read from. A vendor's name
	// means the body is recognizably that vendor's:
	//
	//	"aidelly"   {"success":false,"error":{"code":"PUBLIC_API_…",…}}: Aidelly's catalog
	//	"altyaa"    {"error":{"code":…,"message":…,"details":…}} with one of Altyaa's codes
	//	"postato"   {"error":"CODE","message":…} with one of Postato's codes, or a platform error,
	//	            {"error":{"origin":"platform","code":…,"retryable":…}}
	//	"stripe"    {"error":{"type":…,"code":…,"doc_url":"https://stripe.com/…"}}
	//	"google"    {"error":{"code":429,"status":"RESOURCE_EXHAUSTED",…}}: Code is the status name; in
	//	            Google's older errors, {"error":{"code":403,"errors":[{"domain":…,"reason":"rateLimitExceeded"}]}},
	//	            the status if any, else the first item's reason
	//
	// Otherwise it names no vendor:
	//
	//	"problem+json"  an RFC 9457 problem document: Code is the type's last segment, or its "code" member
	//	"generic"       a shape that many APIs share: {"error":{"code":…,"message":…}} (without a code, the
	//	                error's "type", as OpenAI and Anthropic send it); {"error":"CODE","message":…} or
	//	                OAuth 2.0's {"error":…,"error_description":…}; {"errors":[{"code":…,"message":…},…]}
	//	                (the first element); {"code":…,"message":…}; {"message":…} alone (GitHub: no Code)
	//
	// It is "" for a body that is not a JSON object or none of these. A
	// code equal to the status, a number or a string of its digits
	// ({"code":"429"}, Azure's), is dropped: it repeats the status.
	Dialect string
}

// Bounds of the server's text in APIError.Error, in bytes.
const (
	maxErrorMessage = 256
	maxErrorToken   = 128 // a code or a request id
)

// Error returns e.g. `429 PUBLIC_API_RATE_LIMITED: Rate limit exceeded
// (request_id 7f3…)`. It never includes Details. The code, message and
// request id come from the server: their control characters become spaces,
// and they are cut ("…") past 128 bytes for the code and the request id and
// 256 for the message, so that a hostile server can neither forge log lines
// nor flood them. The fields keep the server's values, but for the
// caller's credentials that Code, Message and RequestID echo, and the
// tokens they hold, which are REDACTED: the user information of the
// request's URL, the values of its query parameters and headers whose
// names say they carry a credential (api_key, access_token, sig,
// Authorization, X-Api-Key, Cookie, …; not the idempotency key), 8 bytes
// or longer, JSON Web Tokens and the word after "Bearer ".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(safeText(e.Code, maxErrorToken))
	} else if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(safeText(e.Message, maxErrorMessage))
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id ")
		b.WriteString(safeText(e.RequestID, maxErrorToken))
		b.WriteByte(')')
	}
	return b.String()
}

// ParseError reads the error envelope of resp. It returns nil when resp is
// nil or its status is below 400. It reads at most 64 KiB of the body and
// leaves resp.Body readable, byte for byte: the bytes it read are served
// first, then the rest. Retryable reflects the default decision: vendor
// hints, the default tables and the status rules (see the README's "What
// is retried").
func ParseError(resp *http.Response) *APIError {
	if resp == nil || resp.StatusCode < 400 {
		return nil
	}
	env, parsed := peekEnvelope(resp, DefaultMaxPeek)
	cl := decide(resp.StatusCode, resp.Header, &env, parsed, defaultCodeClass)
	ra, _ := serverWait(resp.StatusCode, resp.Header, cl, time.Now)
	return newAPIError(resp, &env, parsed, cl, ra)
}

func newAPIError(resp *http.Response, env *envelope, parsed bool, cl Class, ra time.Duration) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		Retryable:  cl.Retryable(),
		RetryAfter: ra,
	}
	if parsed {
		e.Code = env.code
		e.Message = env.message
		e.Dialect = env.dialect
		e.RequestID = env.requestID
		if len(env.details) > 0 && string(env.details) != "null" {
			e.Details = json.RawMessage(env.details) // a copy already
		}
	}
	if e.RequestID == "" {
		e.RequestID = headerRequestID(resp.Header)
	}
	// A server may echo what the caller sent ("invalid api key sk_…"):
	// the error, which callers log, does not repeat it.
	e.Code = redact.Echoes(e.Code, resp.Request)
	e.Message = redact.Echoes(e.Message, resp.Request)
	e.RequestID = redact.Echoes(e.RequestID, resp.Request)
	return e
}

// headerRequestID returns the request id a server sent in a header: the
// common names first, then the vendors' own (GitHub's, and AWS's two).
func headerRequestID(h http.Header) string {
	for _, k := range [...]string{"X-Request-Id", "Request-Id", "X-Correlation-Id",
		"X-Github-Request-Id", "X-Amzn-Requestid", "X-Amz-Request-Id"} {
		if v := h[k]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}
