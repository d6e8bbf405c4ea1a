package resilient

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/resilienthttp/resilient/internal/uuid"
)

// idempotencyCtxKey is the context key of a caller's idempotency key.
type idempotencyCtxKey struct{}

// WithIdempotencyKey returns a copy of ctx that makes the Transport send key
// as the idempotency key of requests made with it, on every attempt, instead
// of a generated one. A key already set as a request header wins over it.
//
// Use it when a write must stay deduplicated across process restarts or
// across calls: derive the key from your own business identifier, for
// example a hash of the post's id. How a key is derived is the caller's
// business; the Transport sends it unchanged. An empty key is ignored.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyCtxKey{}, key)
}

// WithoutIdempotencyKeys turns automatic keys off. A key the caller sets, as
// a header or with WithIdempotencyKey, is still sent and still makes the
// write retryable; a write without one is then retried only when it
// provably never left this process or got a 429.
func WithoutIdempotencyKeys() Option {
	return func(c *config) { c.noIdempotencyKeys = true }
}

// WithIdempotencyHeader sets the name of the header that carries keys
// (default Idempotency-Key); some APIs use X-Idempotency-Key. A key the
// caller set in either of those two headers is always honored. It panics on
// an empty name.
func WithIdempotencyHeader(name string) Option {
	if name == "" {
		panic("resilient: WithIdempotencyHeader: empty header name")
	}
	return func(c *config) { c.idempotencyHeader = textproto.CanonicalMIMEHeaderKey(name) }
}

// WithIdempotencyMethods sets the methods that get an automatic key
// (default POST and PATCH). Methods are matched case-sensitively, as
// net/http does.
func WithIdempotencyMethods(methods ...string) Option {
	m := append([]string(nil), methods...)
	return func(c *config) { c.idempotencyMethods = m }
}

// isIdempotentMethod reports whether repeating method is safe by its
// definition (RFC 9110, section 9.2.2). An empty method means GET.
func isIdempotentMethod(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// idempotencyKey returns the key of a call and whether it must be stamped
// on each attempt: a key in the request's headers is used as it is; else a
// key from the context, else a generated one for the configured methods.
func (t *Transport) idempotencyKey(req *http.Request) (key string, stamp bool) {
	if k := headerKey(req.Header, t.cfg.idempotencyHeader); k != "" {
		return k, false
	}
	if k, _ := req.Context().Value(idempotencyCtxKey{}).(string); k != "" {
		return k, true
	}
	if t.cfg.noIdempotencyKeys || !t.generatesKeyFor(req.Method) {
		return "", false
	}
	return newIdempotencyKey(), true
}

func (t *Transport) generatesKeyFor(method string) bool {
	if method == "" {
		method = http.MethodGet
	}
	for _, m := range t.cfg.idempotencyMethods {
		if m == method {
			return true
		}
	}
	return false
}

// headerKey returns the caller's key from the configured header or either
// of the two usual ones.
func headerKey(h http.Header, name string) string {
	if h == nil {
		return ""
	}
	for _, k := range [...]string{name, "Idempotency-Key", "X-Idempotency-Key"} {
		if v := h[k]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

// needsKey reports whether the server answered that a key was required for
// a call that had none, and one may be generated (once).
func (c *call) needsKey(st *attemptState) bool {
	if c.key != "" || c.keyRetry || c.t.cfg.noIdempotencyKeys || st.apiErr == nil {
		return false
	}
	return isKeyRequired(st.apiErr)
}

// isKeyRequired recognizes an answer saying an idempotency key was
// required: Aidelly's 400 PUBLIC_API_IDEMPOTENCY_REQUIRED, or a 400 or 428
// whose code (an RFC 9457 problem's type included) speaks of a required or
// missing idempotency key.
func isKeyRequired(e *APIError) bool {
	if e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusPreconditionRequired {
		return false
	}
	if e.Code == "PUBLIC_API_IDEMPOTENCY_REQUIRED" {
		return true
	}
	c := strings.ToLower(e.Code)
	return strings.Contains(c, "idempotency") && (strings.Contains(c, "required") || strings.Contains(c, "missing"))
}

// newIdempotencyKey returns a random (version 4) UUID from crypto/rand.
func newIdempotencyKey() string { return uuid.New() }
