package resilienttest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/resilienthttp/resilient/internal/uuid"
)

// Dialect is the API a Server imitates: the shape of its envelopes, its
// error codes and where it puts request ids.
type Dialect int

// The dialects of the three vendor APIs the library was designed from.
const (
	// Aidelly wraps every body in an envelope that carries the request id:
	// {"success":true,"data":{…},"request_id":"<uuid>"} and
	// {"success":false,"error":{"code":"PUBLIC_API_…","message":"…"},"request_id":"<uuid>"}.
	// Its writes require an Idempotency-Key header by default (an
	// X-Idempotency-Key is no key to it), and its quota counts reads and
	// writes apart by default (see Quota).
	Aidelly Dialect = iota
	// Altyaa answers {"data":…} and {"error":{"code":"invalid_request",
	// "message":"…","details":{"field":"…"}}}, with the request id in the
	// X-Request-Id response header.
	Altyaa
	// Postato answers bare resources and {"error":"INVALID_REQUEST",
	// "message":"…","details":{"content":["Required"]}}, with the request id
	// in the X-Request-Id response header. As the real Postato, it honors
	// Idempotency-Key on POST /posts only, and marks no replay (see the
	// package documentation).
	Postato
)

// String returns the dialect's lower-case name ("aidelly", "altyaa",
// "postato"), the name resilient.APIError.Dialect uses.
func (d Dialect) String() string {
	switch d {
	case Aidelly:
		return "aidelly"
	case Altyaa:
		return "altyaa"
	case Postato:
		return "postato"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

func (d Dialect) valid() bool { return d == Aidelly || d == Altyaa || d == Postato }

// ErrorCode returns the code the dialect puts in the error envelope it
// answers with status on route, as a Server renders it for Respond(status):
//
//	status     Aidelly                                Altyaa               Postato
//	400        PUBLIC_API_BODY_INVALID (writes),      invalid_request      INVALID_REQUEST
//	           PUBLIC_API_QUERY_INVALID (reads)
//	401        PUBLIC_API_AUTH_REQUIRED               unauthorized         UNAUTHORIZED
//	403        PUBLIC_API_SCOPE_FORBIDDEN             forbidden            permission_denied
//	404        PUBLIC_API_POST_NOT_FOUND (posts),     not_found            not_found
//	           PUBLIC_API_NOT_FOUND (other routes)
//	409        PUBLIC_API_IDEMPOTENCY_CONFLICT        conflict             CONFLICT
//	422        PUBLIC_API_PUBLISH_FAILED              invalid_request      VALIDATION_FAILED
//	429        PUBLIC_API_RATE_LIMITED                rate_limit_exceeded  RATE_LIMITED
//	500        the route's *_FAILED code (below)      service_unavailable  INTERNAL_ERROR
//	502, 504   the route's *_FAILED code              service_unavailable  BAD_GATEWAY, GATEWAY_TIMEOUT
//	503        the route's *_FAILED code              service_unavailable  SERVICE_UNAVAILABLE
//
// Aidelly's server-error codes are PUBLIC_API_POST_CREATE_FAILED (create
// post), PUBLIC_API_POST_LIST_FAILED (list), PUBLIC_API_POST_FETCH_FAILED
// (fetch), PUBLIC_API_UPLOAD_URL_FAILED (upload URL),
// PUBLIC_API_USAGE_FETCH_FAILED (usage) and PUBLIC_API_CONTEXT_ERROR
// elsewhere. Any other status gets a code made of its status text, in the
// dialect's case: PUBLIC_API_IM_A_TEAPOT, im_a_teapot, IM_A_TEAPOT.
//
// The idempotency errors have codes of their own: see Server.
func (d Dialect) ErrorCode(route string, status int) string {
	switch d {
	case Aidelly:
		switch status {
		case 400:
			if isWriteRoute(route) {
				return "PUBLIC_API_BODY_INVALID"
			}
			return "PUBLIC_API_QUERY_INVALID"
		case 401:
			return "PUBLIC_API_AUTH_REQUIRED"
		case 403:
			return "PUBLIC_API_SCOPE_FORBIDDEN"
		case 404:
			if strings.HasPrefix(route, "GET /v1/posts") {
				return "PUBLIC_API_POST_NOT_FOUND"
			}
			return "PUBLIC_API_NOT_FOUND"
		case 409:
			return codeAidellyConflict
		case 422:
			return "PUBLIC_API_PUBLISH_FAILED"
		case 429:
			return "PUBLIC_API_RATE_LIMITED"
		}
		if isServerError(status) {
			switch route {
			case RouteCreatePost:
				return "PUBLIC_API_POST_CREATE_FAILED"
			case RouteListPosts:
				return "PUBLIC_API_POST_LIST_FAILED"
			case RouteGetPost:
				return "PUBLIC_API_POST_FETCH_FAILED"
			case RouteUploadURL:
				return "PUBLIC_API_UPLOAD_URL_FAILED"
			case RouteUsage:
				return "PUBLIC_API_USAGE_FETCH_FAILED"
			}
			return "PUBLIC_API_CONTEXT_ERROR"
		}
		return "PUBLIC_API_" + snake(status, true)
	case Altyaa:
		switch status {
		case 400, 422:
			return "invalid_request"
		case 401:
			return "unauthorized"
		case 403:
			return "forbidden"
		case 404:
			return "not_found"
		case 409:
			return "conflict"
		case 429:
			return "rate_limit_exceeded"
		}
		if isServerError(status) {
			return "service_unavailable"
		}
		return snake(status, false)
	default:
		switch status {
		case 400:
			return "INVALID_REQUEST"
		case 401:
			return "UNAUTHORIZED"
		case 403:
			return "permission_denied"
		case 404:
			return "not_found"
		case 409:
			return "CONFLICT"
		case 422:
			return "VALIDATION_FAILED"
		case 429:
			return "RATE_LIMITED"
		case 500:
			return "INTERNAL_ERROR"
		case 502:
			return "BAD_GATEWAY"
		case 503:
			return "SERVICE_UNAVAILABLE"
		case 504:
			return "GATEWAY_TIMEOUT"
		}
		return snake(status, true)
	}
}

// isServerError reports whether status is one of the server errors the
// dialects document, a failure that a retry may mend: 500, 502, 503 or
// 504. Another 5xx (501, 507) gets a code made of its status text.
func isServerError(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Codes of the idempotency errors.
const (
	codeAidellyConflict    = "PUBLIC_API_IDEMPOTENCY_CONFLICT"
	codeAidellyKeyRequired = "PUBLIC_API_IDEMPOTENCY_REQUIRED"
	codeAltyaaKeyRequired  = "idempotency_key_required"
	codePostatoConflict    = "IDEMPOTENCY_CONFLICT"
	codePostatoKeyRequired = "IDEMPOTENCY_KEY_REQUIRED"
)

// conflict returns the status and code of the answer to a key reused with
// another payload: 409 for Aidelly and Altyaa; 422 for Postato, as the IETF
// Idempotency-Key draft says.
func (d Dialect) conflict() (int, string) {
	switch d {
	case Aidelly:
		return http.StatusConflict, codeAidellyConflict
	case Altyaa:
		return http.StatusConflict, "conflict"
	}
	return http.StatusUnprocessableEntity, codePostatoConflict
}

// keyRequired returns the code of the 400 answer to a write without a key.
func (d Dialect) keyRequired() string {
	switch d {
	case Aidelly:
		return codeAidellyKeyRequired
	case Altyaa:
		return codeAltyaaKeyRequired
	}
	return codePostatoKeyRequired
}

// snake returns the status text of status in snake case.
func snake(status int, upper bool) string {
	t := http.StatusText(status)
	if t == "" {
		t = "status " + strconv.Itoa(status)
	}
	var b strings.Builder
	under := false
	for _, r := range t {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			if upper && r >= 'a' {
				r -= 'a' - 'A'
			}
		case 'A' <= r && r <= 'Z':
			if !upper {
				r += 'a' - 'A'
			}
		case r == '\'':
			continue
		default:
			under = b.Len() > 0
			continue
		}
		if under {
			b.WriteByte('_')
			under = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// messages are the human-readable messages of the codes, from the vendors'
// catalogs where they give one.
var messages = map[string]string{
	"PUBLIC_API_BODY_INVALID":         "Invalid JSON or schema validation error",
	"PUBLIC_API_QUERY_INVALID":        "Invalid query parameters",
	"PUBLIC_API_AUTH_REQUIRED":        "Missing bearer token",
	"PUBLIC_API_SCOPE_FORBIDDEN":      "Key lacks required scope(s)",
	"PUBLIC_API_POST_NOT_FOUND":       "Post does not exist or is inaccessible",
	"PUBLIC_API_IDEMPOTENCY_CONFLICT": "Reused key with different payload",
	"PUBLIC_API_IDEMPOTENCY_REQUIRED": "Missing Idempotency-Key on write",
	"PUBLIC_API_PUBLISH_FAILED":       "Provider publish failed but post state persisted",
	"PUBLIC_API_RATE_LIMITED":         "Rate limit exceeded",
	"PUBLIC_API_POST_CREATE_FAILED":   "Post persistence failed",
	"PUBLIC_API_POST_LIST_FAILED":     "Post listing query failed",
	"PUBLIC_API_POST_FETCH_FAILED":    "Post fetch query failed",
	"PUBLIC_API_UPLOAD_URL_FAILED":    "Signed upload URL generation failed",
	"PUBLIC_API_USAGE_FETCH_FAILED":   "Usage aggregation query failed",
	"PUBLIC_API_CONTEXT_ERROR":        "Scope resolution failed server-side",
	"invalid_request":                 "Payload validation error.",
	"unauthorized":                    "Missing or invalid credentials.",
	"forbidden":                       "Authenticated but lacks permission.",
	"not_found":                       "Resource does not exist or is outside workspace scope.",
	"conflict":                        "Action contradicts current state.",
	"rate_limit_exceeded":             "Too many requests in a window.",
	"service_unavailable":             "Temporary downtime or external dependency failure.",
	"idempotency_key_required":        "Idempotency-Key header is required for writes.",
	"INVALID_REQUEST":                 "Body failed validation",
	"UNAUTHORIZED":                    "Missing or invalid API key",
	"permission_denied":               "API key lacks the required permission",
	"VALIDATION_FAILED":               "Post failed platform-specific rules",
	"CONFLICT":                        "Resource state conflict",
	"RATE_LIMITED":                    "Rate limit hit",
	"INTERNAL_ERROR":                  "Transient server error",
	"BAD_GATEWAY":                     "Upstream error",
	"SERVICE_UNAVAILABLE":             "Service temporarily unavailable",
	"GATEWAY_TIMEOUT":                 "Upstream timed out",
	"IDEMPOTENCY_CONFLICT":            "Idempotency-Key reused with a different payload",
	"IDEMPOTENCY_KEY_REQUIRED":        "Idempotency-Key header is required",
}

func (d Dialect) message(code string, status int) string {
	if d == Postato && code == "not_found" {
		return "Resource doesn't exist"
	}
	if m, ok := messages[code]; ok {
		return m
	}
	return http.StatusText(status)
}

// setRequestID sets the request id header of the dialects that send one.
func (d Dialect) setRequestID(h http.Header, id string) {
	if d != Aidelly {
		h.Set("X-Request-Id", id)
	}
}

type aidellyErrorBody struct {
	Success   bool          `json:"success"`
	Error     aidellyDetail `json:"error"`
	RequestID string        `json:"request_id"`
}

type aidellyDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type altyaaErrorBody struct {
	Error altyaaDetail `json:"error"`
}

type altyaaDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details,omitempty"`
}

type postatoErrorBody struct {
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details,omitempty"`
}

type aidellySuccessBody struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	RequestID string          `json:"request_id"`
}

type altyaaSuccessBody struct {
	Data json.RawMessage `json:"data"`
}

// errorBody renders the dialect's error envelope. details is raw JSON (nil
// for none); Aidelly's envelope has no details.
func (d Dialect) errorBody(code, msg string, details json.RawMessage, requestID string) []byte {
	var v any
	switch d {
	case Aidelly:
		v = aidellyErrorBody{Error: aidellyDetail{Code: code, Message: msg}, RequestID: requestID}
	case Altyaa:
		v = altyaaErrorBody{Error: altyaaDetail{Code: code, Message: msg, Details: details}}
	default:
		v = postatoErrorBody{Error: code, Message: msg, Details: details}
	}
	b, _ := json.Marshal(v) // strings and valid raw JSON only: cannot fail
	return b
}

// successBody renders the dialect's success envelope around data, a JSON
// value.
func (d Dialect) successBody(data json.RawMessage, requestID string) []byte {
	switch d {
	case Aidelly:
		b, _ := json.Marshal(aidellySuccessBody{Success: true, Data: data, RequestID: requestID})
		return b
	case Altyaa:
		b, _ := json.Marshal(altyaaSuccessBody{Data: data})
		return b
	}
	return data
}

// invalidBodyDetails returns the details of a 400 for a body that is not a
// JSON object, in the dialect's shape.
func (d Dialect) invalidBodyDetails() json.RawMessage {
	switch d {
	case Altyaa:
		return json.RawMessage(`{"field":"body","reason":"must be a JSON object"}`)
	case Postato:
		return json.RawMessage(`{"body":["Must be a JSON object"]}`)
	}
	return nil
}

// keyRequiredDetails returns the details of a 400 for a write without a key.
func (d Dialect) keyRequiredDetails() json.RawMessage {
	switch d {
	case Altyaa:
		return json.RawMessage(`{"field":"Idempotency-Key","reason":"required"}`)
	case Postato:
		return json.RawMessage(`{"Idempotency-Key":["Required"]}`)
	}
	return nil
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string { return uuid.New() }
