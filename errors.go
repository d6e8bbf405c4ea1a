package resilient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinel errors. Errors returned by the Transport wrap them with detail;
// test for them with errors.Is.
var (
	// ErrCircuitOpen means the circuit breaker of the request's host is open:
	// the attempt was refused without touching the network.
	ErrCircuitOpen = errors.New("resilient: circuit breaker open")

	// ErrRateLimited means the client-side rate limiter would have had the
	// attempt wait past the request's deadline or the call's budget: the
	// attempt was refused without touching the network.
	ErrRateLimited = errors.New("resilient: rate limited")

	// ErrAttemptTimeout means one attempt passed the limit set with
	// WithAttemptTimeout before its response headers arrived. It is retried
	// like any network timeout.
	ErrAttemptTimeout = errors.New("resilient: attempt timed out")
)

// Error is the error RoundTrip returns when a call ends without a response:
// it names the call (its URL without the query string), says how many
// attempts were made, and unwraps to the cause of the last one.
type Error struct {
	Method   string
	URL      string // scheme://host/path: never the query string
	Attempts int
	Err      error
}

// Error returns e.g. `resilient: POST https://api.example.com/v1/posts: 6
// attempts: dial tcp 127.0.0.1:1: connect: connection refused`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("resilient: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.URL)
	b.WriteString(": ")
	if e.Attempts == 1 {
		b.WriteString("1 attempt: ")
	} else {
		fmt.Fprintf(&b, "%d attempts: ", e.Attempts)
	}
	b.WriteString(redactErr(e.Err))
	return b.String()
}

// Unwrap returns the cause of the last attempt's failure.
func (e *Error) Unwrap() error { return e.Err }

// redactURL returns u without its query string, fragment and user info.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, Opaque: u.Opaque}
	return v.String()
}

// redactErr returns err's message with the query string of every URL it
// embeds removed (net/http's *url.Error quotes the full URL).
func redactErr(err error) string {
	if err == nil {
		return ""
	}
	return redactQueries(err.Error())
}

// redactQueries removes "?query" (up to the next quote, space or end) from
// every URL in s that has one.
func redactQueries(s string) string {
	if !strings.Contains(s, "?") || !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			break
		}
		// Find the end of this URL.
		end := i + 3
		for end < len(s) && !isURLEnd(s[end]) {
			end++
		}
		u := s[:end]
		if q := strings.IndexAny(u[i:], "?#"); q >= 0 {
			u = u[:i+q]
		}
		b.WriteString(u)
		s = s[end:]
	}
	b.WriteString(s)
	return b.String()
}

func isURLEnd(c byte) bool {
	return c == '"' || c == ' ' || c == '\'' || c == '\n' || c == '\t' || c == '>' || c == ')'
}
