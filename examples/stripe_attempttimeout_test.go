package examples

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"github.com/stripe/stripe-go/v85"
)

// TestStripeAttemptTimeoutOption: a resilient.WithAttemptTimeout among the
// recipe's opts replaces its 80 seconds, as its documentation says. An
// attempt that gets no answer is cut after the caller's 10 seconds and
// resent with its key, so that the customer is created after about 10
// seconds, not after the recipe's 80.
func TestStripeAttemptTimeoutOption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(stripeCustomer),
			resilienttest.WithScript("POST /v1/customers", resilienttest.Slow(time.Hour)))
		cfg := StripeBackendConfig(srv.Base(), resilient.WithAttemptTimeout(10*time.Second))
		cfg.URL = stripe.String(srv.URL)
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
		start := time.Now()
		c, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
		if err != nil {
			t.Fatalf("Create after %v: %v", time.Since(start), err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("the customer was created after %v, want about the 10 s WithAttemptTimeout set", d)
		}
		if c.ID != "cus_123" {
			t.Errorf("customer id %q, want cus_123", c.ID)
		}
		if got := srv.Hits("/v1/customers"); got != 2 {
			t.Errorf("%d server attempts, want 2", got)
		}
	})
}
