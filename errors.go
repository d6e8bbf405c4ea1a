package resilient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/resilienthttp/resilient/internal/redact"
)

// Sentinel errors. Errors returned by the Transport wrap them with detail;
// test for them with errors.Is.
var (
	// ErrCircuitOpen means the circuit breaker of the request's host is open:
	// the attempt was refused without touching the network.
	ErrCircuitOpen = errors.New("resilient: circuit breaker open")

	// ErrRateLimited means the client-side rate limiter would have had the
	// attempt wait past the request's deadline or the call's budget, or
	// wait longer than WithMaxRetryAfter's limit for a pause, a quota reset
	// or a pace the server set: the attempt was refused without touching
	// the network.
	ErrRateLimited = errors.New("resilient: rate limited")

	// ErrTooManyInFlight means the request's host had as many attempts in
	// flight as WithMaxInFlight allows, and no slot came free within the
	// attempt's deadline (or, for a hedged copy, at once): the attempt was
	// refused without touching the network.
	ErrTooManyInFlight = errors.New("resilient: too many requests in flight")

	// ErrAttemptTimeout means one attempt passed the limit set with
	// WithAttemptTimeout, or what remained of the call's budget
	// (WithMaxElapsed), before its response headers arrived. It is retried
	// like any network timeout (a budget spent leaves no time for a retry,
	// nor does a per-call attempt timeout given below 1ms, see
	// WithAttemptTimeout), and it is a timeout: its Timeout method, and
	// that of every error of the Transport wrapping it, returns true. An
	// attempt cut while waiting for the caller's request body, which
	// stalled, is the caller's: its error is a *RequestError wrapping
	// ErrAttemptTimeout, not retried.
	// As the error of http.Client's Timeout, it is also
	// context.DeadlineExceeded for errors.Is, and never context.Canceled,
	// whatever the caller's context.
	ErrAttemptTimeout error = &timeoutError{"resilient: attempt timed out"}
)

// timeoutError is an error that is a timeout, as net.Error tells one, and
// context.DeadlineExceeded for errors.Is, as net/http's own timeouts are.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string        { return e.msg }
func (e *timeoutError) Timeout() bool        { return true }
func (e *timeoutError) Temporary() bool      { return true }
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Error is the error RoundTrip returns when a call ends without a response:
// it names the call (its URL without the query string), says how many
// attempts were made (and how many of them were hedged copies), and
// unwraps to the cause of the last one. It counts the attempts as the
// call's Report does (see Report.Attempts, Report.Hedges), so that a
// logged error and the Report of its call tell one number; but a call
// that http.Client redirected fails on its last hop, whose URL and
// attempts the Error names, where its Report adds up the attempts of all
// its hops (TestErrorCountsItsHopOfARedirect).
//
// Its message never holds a secret of a URL: URLs quoted by the cause (a
// *url.Error of a base RoundTripper built on an http.Client, for example,
// and any URL it quotes, with a scheme or not: a relative "/v1?token=…", a
// proxy's "user:pass@proxy:8080") lose their query, fragment and user info, control characters become
// spaces (in the method too), and the cause's text is cut ("…") past 1 KiB (net/http quotes a
// server's malformed answer in its errors). Err is the cause as the
// Transport recorded it, with the same redaction of its message; errors.Is and errors.As still reach the original
// errors below it, and those keep their own messages. Note that
// http.Client.Do wraps every error of its Transport in a *url.Error holding
// the request's full URL, query included: no RoundTripper can change that;
// log the *Error (errors.As), or the message of the *url.Error's Err, rather
// than the *url.Error itself.
//
// What callers may test on an *Error, as on the error of a plain
// http.Client: errors.Is and errors.As reach every error of the last
// attempt's cause (a *net.OpError, a *net.DNSError, syscall.ECONNREFUSED,
// io.ErrUnexpectedEOF, a *tls.CertificateVerificationError, the caller's
// context.Canceled or context.DeadlineExceeded, or the cause given to
// context.WithCancelCause or WithTimeoutCause, ...); errors.Is(err,
// http.ErrSchemeMismatch) holds for an https request answered in plain HTTP,
// as http.Client says it of its Transport's error. A timeout the Transport
// imposes (WithAttemptTimeout, WithMaxElapsed) is ErrAttemptTimeout, a
// timeout for os.IsTimeout and context.DeadlineExceeded for errors.Is, as
// http.Client's Timeout is, and never context.Canceled; an attempt refused
// by a layer of the chain (ErrCircuitOpen, ErrRateLimited,
// ErrTooManyInFlight, ErrRetryBudgetExhausted) is none of them; a retry so
// refused after an attempt that got no response (a reset, a timeout) ends
// the call with both errors, so that the call is a timeout when that
// attempt's error was, as a plain client's of that one request. Its message
// starts with "resilient: ", then the method and the URL.
type Error struct {
	Method   string // the request's method (GET for an empty one, as net/http sends it), its control characters replaced in Error
	URL      string // scheme://host/path: never the query string; the host's name cut past 255 bytes and the path past 8 KiB (before they are escaped), as in Attempt
	Attempts int    // the attempts made, the last one's included, hedged copies sent (Hedges) and attempts refused locally too, as Report.Attempts counts them (of the last hop only when http.Client redirected the call, whose Report adds up its hops)
	Err      error  // the cause of the last attempt's failure, its message redacted
	// Hedges, added last so that a literal of the earlier fields still
	// compiles, are the hedged copies sent (see WithHedging), counted in
	// Attempts, as Report.Hedges counts them.
	Hedges int
}

// Timeout reports whether the call ended on a timeout: the cause of the
// last attempt is, or wraps, an error whose Timeout method returns true (a
// net.Error timeout, context.DeadlineExceeded, ErrAttemptTimeout). It makes
// os.IsTimeout and url.Error's Timeout see through the Transport, as they
// see through http.Transport. Error has no Temporary method (net.Error's,
// deprecated), on purpose: the Transport has retried what a retry could
// help, and an SDK that retries an error whose Temporary says true
// (aws-sdk-go v1, through http.Client's *url.Error) would retry it again
// on top, multiplying the attempts a timeout gets.
func (e *Error) Timeout() bool { return isTimeout(e.Err) }

// Error returns e.g. `resilient: POST https://api.example.com/v1/posts: 6
// attempts: dial tcp 127.0.0.1:1: connect: connection refused`; with
// hedged copies, `… 4 attempts, 2 of them hedged copies: …`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("resilient: ")
	b.WriteString(safeText(e.Method, maxErrorToken)) // net/http refuses a method with control characters, and quotes it
	b.WriteByte(' ')
	b.WriteString(safeText(e.URL, maxErrorText))
	b.WriteString(": ")
	if e.Attempts == 1 {
		b.WriteString("1 attempt")
	} else {
		fmt.Fprintf(&b, "%d attempts", e.Attempts)
	}
	switch {
	case e.Hedges == 1:
		b.WriteString(", 1 of them a hedged copy")
	case e.Hedges > 1:
		fmt.Fprintf(&b, ", %d of them hedged copies", e.Hedges)
	}
	b.WriteString(": ")
	b.WriteString(redactErr(e.Err))
	return b.String()
}

// Unwrap returns the cause of the last attempt's failure.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is http.ErrSchemeMismatch and the last attempt
// failed on a server that answered an https request in plain HTTP:
// http.Client says so of the error of its Transport only when that error is
// the tls.RecordHeaderError itself, not an error wrapping it.
func (e *Error) Is(target error) bool {
	if target != http.ErrSchemeMismatch {
		return false
	}
	var rec tls.RecordHeaderError
	return errors.As(e.Err, &rec) && string(rec.RecordHeader[:]) == "HTTP/"
}

// redactURL returns the URL of req without its query string, fragment
// and user info, an opaque URL's included: net/http sends an Opaque as it
// is, and the server reads a '?' in it as the start of the query; the
// credentials of the requests that led to req by redirects are REDACTED
// in an opaque URL as in a path (http.Client follows a Location of
// "https:api.example.com/v1/keys/<key>" as that opaque URL). Its host
// is bounded as in Attempt (a redirect may name a URL megabytes long), its
// path is as Attempt has it (see recordedPath), and user information put
// in its host by hand is REDACTED, as in Attempt
// ("https://REDACTED@api.example.com/v1"): net/http dials that host, not
// api.example.com.
func redactURL(req *http.Request) string {
	if req == nil || req.URL == nil {
		return ""
	}
	u := req.URL
	scheme, host := urlKey(u.Scheme, u.Host)
	opaque := redact.URLOpaque(u) // with the query a password ran into ("alice:pa?pw@host")
	if u.Opaque != "" && redact.SchemeIsUser(u.Scheme, opaque) {
		scheme = "" // a key url.Parse read as a scheme ("KEY:@api.example.com")
	}
	var user *url.Userinfo
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		// User information put in the host by hand, REDACTED (urlKey):
		// written as a URL's, not escaped as part of the host.
		user, host = url.User(host[:at]), host[at+1:]
	}
	host = redact.HostParams(host) // "api.example.com;jsessionid=REDACTED"
	v := url.URL{
		Scheme:  scheme,
		User:    user,
		Host:    host,
		Path:    recordedPath(req),
		RawPath: u.RawPath,
		Opaque:  redact.RedirectedCut(redact.SchemeOpaque(u.Scheme, opaque, ""), req, redact.MaxPath),
	}
	if v.Path != u.Path {
		v.RawPath = ""
	}
	return v.String()
}

// recordedPath returns the path of req's URL as the records and errors
// of its attempts show it: cut past redact.MaxPath bytes, with the
// credentials an API carries in a path by design REDACTED (see
// redact.Path), and those the caller sent on a request that led to req by
// a redirect (see redact.Redirected): a server may redirect to a path it
// built from the key a query carried ("/v1/keys/<key>/usage"), which the
// request that follows the redirect does not carry. The credentials are
// looked for before the cut (see redact.RedirectedCut): one across it
// would keep its first bytes. A URL with a scheme but no host, one slash
// short or long ("https:/user:token@api.example.com/v1"), has the user
// information of the authority its path holds dropped (see
// redact.URLPath).
func recordedPath(req *http.Request) string {
	return redact.RedirectedCut(redact.URLPath(req.URL), req, redact.MaxPath)
}

// typedHost returns the host the caller meant in u, its user information
// included: u.Host, or, for a URL with a scheme but no host, one slash
// short or long ("https:/user:token@api.example.com/v1"), the first
// segment of its path. (A user name url.Parse read as a scheme,
// "KEY:@api.example.com", is a credential redact.Echoes finds.)
func typedHost(u *url.URL) string {
	if u.Host != "" || u.Scheme == "" || u.Opaque != "" {
		return u.Host
	}
	auth, _, _ := strings.Cut(strings.TrimLeft(u.Path, "/"), "/")
	return auth
}

// isTimeout reports whether err, or an error it wraps, is a timeout: has a
// Timeout method that returns true.
func isTimeout(err error) bool {
	for err != nil {
		if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if isTimeout(e) {
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
