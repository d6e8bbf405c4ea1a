package resilient

import "net/http"

// breakerMiddleware returns the per-host circuit breaker of the chain.
func (t *Transport) breakerMiddleware() Middleware { return nil }

var _ = http.MethodGet
