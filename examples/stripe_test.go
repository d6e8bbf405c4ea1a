package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/stripe/stripe-go/v85"
)

// stripeFault answers a request to the Stripe API with a failure.
type stripeFault func(w http.ResponseWriter)

// stripeAPIError is Stripe's own 500: its error envelope and request id.
func stripeAPIError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_test")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred."}}`))
}

// stripeShouldNotRetry is a 500 with Stripe's hint not to retry it.
func stripeShouldNotRetry(w http.ResponseWriter) {
	w.Header().Set("Stripe-Should-Retry", "false")
	stripeAPIError(w)
}

// stripeCreateCustomer creates a customer through a stripe-go client on
// cfg against a Stripe server that answers every request with fault, and
// returns the attempts the server saw and the distinct idempotency keys
// they carried.
func stripeCreateCustomer(t *testing.T, cfg *stripe.BackendConfig, srv *pipeServer) (attempts, keys int, err error) {
	t.Helper()
	cfg.URL = stripe.String(srv.URL)
	cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
	sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
	_, err = sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
	return srv.Hits("/v1/customers"), len(srv.Keys("/v1/customers")), err
}

// TestStripe measures the attempts of one failing POST /v1/customers with
// stripe-go's defaults over resilient.New (before) and with
// StripeBackendConfig (after).
func TestStripe(t *testing.T) {
	for _, tc := range []struct {
		name          string
		row           string // the case's row in docs/sdks.md
		fault         stripeFault
		stripeErr     bool // the call's error is a *stripe.Error parsed from the envelope
		before, after int
	}{
		// stripe-go v85 does not retry an error it could parse from
		// Stripe's envelope (only a 429 lock_timeout), whatever the
		// status: only resilient retries Stripe's own 500.
		{"StripeEnvelope500", "Stripe's 500 (its JSON envelope)", stripeAPIError, true, 6, 6},
		// An answer that is not Stripe's envelope (a proxy's page, a
		// connection lost) is retried by stripe-go too: 3 × 6.
		{"Proxy502", "a proxy's 502 (HTML)", proxyHTML, false, 18, 6},
		{"ConnectionDropped", "connection dropped", dropConnection, false, 18, 6},
		// resilient does not read Stripe-Should-Retry yet.
		{"ShouldRetryFalse", "500 with `Stripe-Should-Retry: false`", stripeShouldNotRetry, true, 6, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after int
			synctest.Test(t, func(t *testing.T) {
				srv := newPipeServer(t, "stripe.test", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.fault(w) }))
				cfg := &stripe.BackendConfig{HTTPClient: &http.Client{Transport: resilient.New(srv.Transport())}}
				n, keys, err := stripeCreateCustomer(t, cfg, srv)
				if err == nil {
					t.Fatal("Create succeeded against a failing server")
				}
				if keys != 1 {
					t.Errorf("defaults: %d distinct idempotency keys, want 1 (stripe-go sets one per call)", keys)
				}
				before = n
			})
			synctest.Test(t, func(t *testing.T) {
				srv := newPipeServer(t, "stripe.test", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.fault(w) }))
				n, keys, err := stripeCreateCustomer(t, StripeBackendConfig(srv.Transport()), srv)
				if err == nil {
					t.Fatal("Create succeeded against a failing server")
				}
				var se *stripe.Error
				if errors.As(err, &se) != tc.stripeErr {
					t.Errorf("recipe: error %T %v; want a *stripe.Error: %v", err, err, tc.stripeErr)
				} else if tc.stripeErr && se.HTTPStatusCode != http.StatusInternalServerError {
					t.Errorf("recipe: error status %d, want 500", se.HTTPStatusCode)
				}
				if keys != 1 {
					t.Errorf("recipe: %d distinct idempotency keys, want 1", keys)
				}
				after = n
			})
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts per call: defaults %d, recipe %d; want %d, %d", before, after, tc.before, tc.after)
			}
			checkDocRow(t, "stripe-go", tc.row, before, after)
		})
	}
}

// TestStripeRecovers shows the recipe's retries succeeding: two 500s, then
// the customer is created on the third attempt, under one key.
func TestStripeRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		srv := newPipeServer(t, "stripe.test", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			n++
			if n <= 2 {
				stripeAPIError(w)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"cus_123","object":"customer","email":"jenny@example.com"}`))
		}))
		cfg := StripeBackendConfig(srv.Transport())
		cfg.URL = stripe.String(srv.URL)
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
		c, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if c.ID != "cus_123" {
			t.Errorf("customer id %q, want cus_123", c.ID)
		}
		if got := srv.Hits("/v1/customers"); got != 3 {
			t.Errorf("%d server attempts, want 3", got)
		}
		if keys := srv.Keys("/v1/customers"); len(keys) != 1 {
			t.Errorf("%d distinct idempotency keys, want 1", len(keys))
		}
	})
}
