package resilienttest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Dialect is the API whose envelopes, headers and codes a Server speaks.
type Dialect int

// The dialects of the three APIs.
const (
	// Aidelly wraps every answer in {"success":…,"data"|"error":…,
	// "request_id":…}; its error codes are PUBLIC_API_*; it requires an
	// Idempotency-Key on writes.
	Aidelly Dialect = iota
	// Altyaa answers errors as {"error":{"code","message","details"}} and
	// sends the request id in the X-Request-Id header.
	Altyaa
	// Postato answers errors as {"error":"CODE","message","details"} and
	// sends the request id in the X-Request-Id header.
	Postato
)

// String returns the dialect's lower-case name.
func (d Dialect) String() string {
	switch d {
	case Aidelly:
		return "aidelly"
	case Altyaa:
		return "altyaa"
	case Postato:
		return "postato"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// errorKind is a kind of error answer, spelled by each dialect.
type errorKind int

const (
	errServer errorKind = iota
	errRateLimited
	errConflict
	errKeyRequired
	errNotFound
	errBadRequest
)

// Route names, as used by WithScript and Stats.Attempts.
const (
	RouteCreatePost = "POST /v1/posts"
	RouteListPosts  = "GET /v1/posts"
	RouteFetchPost  = "GET /v1/posts/{id}"
	RouteUploadURL  = "POST /v1/media/upload-url"
	RouteUsage      = "GET /v1/usage"
)

// code returns the dialect's code of an error kind on a route.
func (d Dialect) code(kind errorKind, route string) (code, message string) {
	switch d {
	case Aidelly:
		switch kind {
		case errServer:
			switch route {
			case RouteCreatePost:
				return "PUBLIC_API_POST_CREATE_FAILED", "Post persistence failed"
			case RouteListPosts:
				return "PUBLIC_API_POST_LIST_FAILED", "Post listing query failed"
			case RouteFetchPost:
				return "PUBLIC_API_POST_FETCH_FAILED", "Post fetch query failed"
			case RouteUploadURL:
				return "PUBLIC_API_UPLOAD_URL_FAILED", "Signed upload URL generation failed"
			case RouteUsage:
				return "PUBLIC_API_USAGE_FETCH_FAILED", "Usage aggregation query failed"
			}
			return "PUBLIC_API_CONTEXT_ERROR", "Scope resolution failed server-side"
		case errRateLimited:
			return "PUBLIC_API_RATE_LIMITED", "Rate limit exceeded"
		case errConflict:
			return "PUBLIC_API_IDEMPOTENCY_CONFLICT", "Reused key with different payload"
		case errKeyRequired:
			return "PUBLIC_API_IDEMPOTENCY_REQUIRED", "Missing Idempotency-Key on write"
		case errNotFound:
			return "PUBLIC_API_POST_NOT_FOUND", "Post does not exist or is inaccessible"
		}
		return "PUBLIC_API_BODY_INVALID", "Invalid JSON or schema validation error"
	case Altyaa:
		switch kind {
		case errServer:
			return "service_unavailable", "Temporary downtime or external dependency failure"
		case errRateLimited:
			return "rate_limit_exceeded", "Too many requests in a window"
		case errConflict:
			return "conflict", "Idempotency key reused with a different payload"
		case errKeyRequired:
			return "invalid_request", "Idempotency-Key header is required"
		case errNotFound:
			return "not_found", "Resource does not exist or is outside workspace scope"
		}
		return "invalid_request", "Payload validation error"
	}
	switch kind {
	case errServer:
		return "INTERNAL_ERROR", "Transient server error"
	case errRateLimited:
		return "RATE_LIMITED", "Rate limit hit"
	case errConflict:
		return "IDEMPOTENCY_CONFLICT", "Idempotency-Key reused with a different body"
	case errKeyRequired:
		return "INVALID_REQUEST", "Idempotency-Key header is required"
	case errNotFound:
		return "not_found", "Resource doesn't exist"
	}
	return "INVALID_REQUEST", "Body failed validation"
}

// errorBody renders the dialect's error envelope.
func (d Dialect) errorBody(kind errorKind, route, requestID string) []byte {
	code, msg := d.code(kind, route)
	var v any
	switch d {
	case Aidelly:
		v = map[string]any{"success": false, "error": map[string]any{"code": code, "message": msg}, "request_id": requestID}
	case Altyaa:
		e := map[string]any{"code": code, "message": msg}
		if kind == errBadRequest || kind == errKeyRequired {
			e["details"] = map[string]any{"field": "Idempotency-Key", "reason": "missing"}
		}
		v = map[string]any{"error": e}
	default:
		e := map[string]any{"error": code, "message": msg}
		if kind == errBadRequest {
			e["details"] = map[string]any{"content": []string{"Required"}}
		}
		v = e
	}
	b, _ := json.Marshal(v)
	return b
}

// successBody renders the dialect's success envelope around data.
func (d Dialect) successBody(data any, requestID string) []byte {
	if d == Aidelly {
		data = map[string]any{"success": true, "data": data, "request_id": requestID}
	}
	b, _ := json.Marshal(data)
	return b
}

// setRequestID puts the request id where the dialect sends it: Altyaa and
// Postato in X-Request-Id (Aidelly has it in the body, and in the header
// too, as its gateway does).
func setRequestID(h http.Header, id string) {
	h.Set("X-Request-Id", id)
}
