package resilient

import "net/http"

// rateLimitMiddleware returns the per-partition rate limiter of the chain.
func (t *Transport) rateLimitMiddleware() Middleware { return nil }

var _ = http.MethodGet
