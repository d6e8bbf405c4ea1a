package examples

import (
	"net/http"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/stripe/stripe-go/v85"
)

// StripeBackendConfig returns a stripe-go backend configuration whose only
// retrying layer is a resilient.Transport over base (nil means
// http.DefaultTransport), configured with opts. stripe-go's own retries are
// turned off: they would stack on resilient's (13 attempts instead of 6 for
// one failing call on a fresh Transport, 3 instead of 1 per call once the
// host's retry budget is spent). stripe-go still sets an Idempotency-Key
// on every POST; resilient takes a key set above it as the caller's word
// that the API deduplicates writes by key, as Stripe does, and resends
// the write with that key after a 5xx or a lost connection. Stripe
// replays, not repeats, a write it processed. stripe-go's own client gives
// a request 80 seconds, its body included, and resends one that got no
// answer by then: each attempt here is cut after 80 seconds without its
// response's headers (resilient.WithAttemptTimeout; one among opts
// replaces it) and resent as stripe-go resends it, where resilient's
// budget alone would spend the whole call on an attempt that never
// answers. The call, its retries and its body included, gets resilient's
// budget: 5 minutes, or what opts set with resilient.WithMaxElapsed (zero:
// no bound but the context's). The client's Timeout is that budget, so
// that resilient's bounds, which end once it returns the response, extend
// to the body: a body that stalled would otherwise hold the call for as
// long as it stalled. Use it as
//
//	sc := stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(examples.StripeBackendConfig(nil))))
func StripeBackendConfig(base http.RoundTripper, opts ...resilient.Option) *stripe.BackendConfig {
	opts = append([]resilient.Option{
		resilient.WithAttemptTimeout(80 * time.Second), // stripe-go's own client gives a request 80 s, then resends it
	}, opts...)
	rt := resilient.New(base, opts...)
	return &stripe.BackendConfig{
		HTTPClient: &http.Client{
			Transport: rt,
			Timeout:   rt.MaxElapsed(), // the budget opts set, over a call's body too, which resilient returns unbounded
		},
		MaxNetworkRetries: stripe.Int64(0), // resilient retries; stripe-go's 2 retries would stack on its own
	}
}
