package examples

import (
	"net/http"

	"github.com/resilienthttp/resilient"
	"github.com/stripe/stripe-go/v85"
)

// StripeBackendConfig returns a stripe-go backend configuration whose only
// retrying layer is a resilient.Transport over base (nil means
// http.DefaultTransport), configured with opts. stripe-go's own retries are
// turned off: they would multiply resilient's. stripe-go still sets an
// Idempotency-Key on every POST, the same on each of resilient's attempts,
// so a retried write is deduplicated by Stripe. Use it as
//
//	sc := stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(examples.StripeBackendConfig(nil))))
func StripeBackendConfig(base http.RoundTripper, opts ...resilient.Option) *stripe.BackendConfig {
	return &stripe.BackendConfig{
		HTTPClient:        &http.Client{Transport: resilient.New(base, opts...)},
		MaxNetworkRetries: stripe.Int64(0), // resilient retries; stripe-go's 2 retries would make 3×6 attempts
	}
}
