// Package resilient makes outbound HTTP calls to flaky, rate-limited APIs
// survive, as an http.RoundTripper that drops into any http.Client and into
// any SDK that accepts one.
//
// A Transport classifies every attempt's result as Success, Transient,
// Throttled or Permanent from the API's JSON error envelope (its stable
// code), not just the status; retries Transient and Throttled results with
// min(cap, base·2^n + jitter) backoff, at most 5 retries by default,
// honoring Retry-After; stamps an idempotency key on POST and PATCH, and
// resends a write that may have been processed only to a host that
// deduplicates by key, so that a retry never creates a duplicate; bounds
// each host's retries by a retry budget; trips a per-host circuit breaker
// on sustained 5xx; paces itself by the server's rate-limit headers; and
// reports every attempt to an observer or a log/slog logger without leaking
// a secret.
//
// The simplest use is a client with the defaults:
//
//	client := resilient.NewClient()
//	resp, err := client.Get("https://api.example.com/v1/posts")
//
// An existing transport, for example one an SDK configured, is wrapped with
// New:
//
//	client := &http.Client{Transport: resilient.New(sdkTransport, resilient.WithMaxRetries(3))}
//
// Chain composes a caller's own middlewares (signing, logging, caching: each
// a Middleware) around a base RoundTripper; a Transport is itself a
// RoundTripper, which Chain can wrap, or take as its base.
package resilient
