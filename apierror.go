package resilient

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file holds APIError, an error response as the Transport reads it, and
// ParseError.

// APIError is an error response of an API, read from its status, headers
// and JSON error envelope. Its Details are kept for the caller and never
// logged by the Transport.
type APIError struct {
	StatusCode int             // the response's HTTP status
	Code       string          // the envelope's stable code; "" when none
	Message    string          // human-readable; may change between API versions
	Details    json.RawMessage // the envelope's details, verbatim; nil when none
	RequestID  string          // from the body, else X-Request-Id, Request-Id, X-Correlation-Id, X-GitHub-Request-Id, x-amzn-RequestId or x-amz-request-id; cut past 1 KiB
	Retryable  bool            // whether the Transport's default decision retries it
	RetryAfter time.Duration   // the server's Retry-After (for a rate-limited 403 whose quota is spent, X-RateLimit-Remaining: 0, the time to X-RateLimit-Reset); 0 when it gave none

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
	//	                (about:blank, a type linking into an RFC, as ASP.NET Core's, or one whose last
	//	                segment repeats the status, as https://httpstatuses.io/409, names no code)
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
// nor flood them. The fields keep the server's values (RequestID cut past
// 1 KiB), but for the caller's credentials that Code, Message and
// RequestID echo, and the tokens they hold, which are REDACTED: the user
// information of the request's URL, the credentials its path holds (a
// webhook's or a bot's token, as Attempt.Path has them REDACTED), the
// values of its query parameters and headers whose names say they carry a
// credential (api_key, access_token, sig, Authorization, X-Api-Key,
// Cookie, …; not the idempotency key), 8 bytes or longer, JSON Web Tokens
// and the word after "Bearer ".
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
// first, then the rest. Its read is bounded in time as the Transport's is
// (see WithMaxPeek): a body still arriving after 1 s is parsed from the
// bytes that came, and one whose read stalls until 2 s have passed is cut
// there, and yields the bytes read, then the error that cut it. (One
// exception, as for the Transport without a deadline of its own: a body
// net/http decompresses whose read stalls inside its gzip header cannot be
// cut, and the read lasts as long as the server stalls.) Retryable
// reflects the default decision: vendor hints, the default tables and the
// status rules (see the README's "What is retried"), the rate-limit headers
// of a 403 read as the Transport reads them, under net/http's spelling of
// their names whatever a response built by hand spelled (resp keeps its
// header as it is). Its result is a *APIError, as errors.As gives one: a
// nil one returned as an error is not a nil error, so test it for nil
// before (if e := ParseError(resp); e != nil { return e }).
func ParseError(resp *http.Response) *APIError {
	if resp == nil || resp.StatusCode < 400 {
		return nil
	}
	env, parsed := peekEnvelopeWithin(resp, DefaultMaxPeek, nil)
	read := resp
	if resp.StatusCode == http.StatusForbidden {
		// A 403's rate-limit headers spelled by hand (a stub's), read
		// as the Transport reads them (see classifier.classify), its
		// request id among them, from a copy: resp keeps its own.
		if c := canonicalRateHeader(resp.Header); c != nil {
			cp := *resp
			cp.Header = c
			read = &cp
		}
	}
	cl := decide(read.StatusCode, read.Header, &env, parsed, defaultCodeClass)
	ra, _ := serverWait(read.StatusCode, read.Header, cl, time.Now)
	return newAPIError(read, nil, &env, parsed, cl, ra)
}

// newAPIError returns the APIError of resp, its envelope env (parsed says
// whether it was one), its class and its server's wait. The server's text
// has the credentials it echoes REDACTED: those of the request resp names,
// else of req, the request the Transport sent (nil for none), which a base
// that builds its responses by hand may leave unnamed.
func newAPIError(resp *http.Response, req *http.Request, env *envelope, parsed bool, cl Class, ra time.Duration) *APIError {
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
	if resp.Request != nil {
		req = resp.Request
	}
	e.Code = redact.Echoes(e.Code, req)
	e.Message = redact.Echoes(e.Message, req)
	// A request id past maxErrorText bytes (a hostile server's header
	// of megabytes) is cut: see redact.EchoesCut.
	e.RequestID = redact.EchoesCut(e.RequestID, req, maxErrorText)
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
