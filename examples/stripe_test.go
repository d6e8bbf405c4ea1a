package examples

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
	"github.com/stripe/stripe-go/v85"
)

// stripeAPIError is Stripe's own 500: its error envelope and request id.
func stripeAPIError(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_test")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred."}}`))
}

// stripeShouldNotRetry is a 500 with Stripe's hint not to retry it, which
// Stripe sends with most of its 500s (its own idempotency layer would only
// replay the failure).
func stripeShouldNotRetry(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Stripe-Should-Retry", "false")
	stripeAPIError(w, r)
}

// stripeCustomer is the answer of a successful POST /v1/customers.
func stripeCustomer(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"id":"cus_123","object":"customer","email":"jenny@example.com"}`))
}

// stripeFault is a way for a Stripe server to fail every request: the
// API's own answer, and the faults resilienttest puts in front of it.
type stripeFault struct {
	api  http.HandlerFunc
	opts []resilienttest.Option
}

var (
	stripeEnvelope500 = stripeFault{api: stripeAPIError}
	stripeNoRetry500  = stripeFault{api: stripeShouldNotRetry}
	// A proxy in front of the API answers 502 with an HTML page.
	stripeProxy502 = stripeFault{api: stripeCustomer, opts: []resilienttest.Option{
		resilienttest.WithFaults(resilienttest.Faults{HTML: 1})}}
	// The API creates the customer, then the connection is lost before
	// the answer.
	stripeDropped = stripeFault{api: stripeCustomer, opts: []resilienttest.Option{
		resilienttest.WithFaults(resilienttest.Faults{DropAfter: 1})}}
)

// stripeSeries makes a series of failing POST /v1/customers with one
// stripe-go client on the backend configuration cfg builds, against a
// Stripe server that fails every request with fault, and returns the
// server attempts, the distinct idempotency keys sent, and the last
// call's error.
func stripeSeries(t *testing.T, calls int, cfg func(base http.RoundTripper) *stripe.BackendConfig, fault stripeFault) (m measurement, keys int, lastErr error) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, fault.api, fault.opts...)
		c := cfg(srv.Base())
		c.URL = stripe.String(srv.URL)
		c.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(c)))
		m = series(calls, func() int { return srv.Hits("/v1/customers") }, func(int) {
			_, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
			if err == nil {
				t.Fatal("Create succeeded against a failing server")
			}
			lastErr = err
		})
		keys = len(srv.Keys("/v1/customers"))
	})
	return m, keys, lastErr
}

// stripeDefaults is stripe-go's default configuration (2 retries) over
// resilient.New with resilient's defaults.
func stripeDefaults(base http.RoundTripper) *stripe.BackendConfig {
	return &stripe.BackendConfig{HTTPClient: &http.Client{Transport: resilient.New(base)}}
}

// TestStripe measures the attempts of failing POST /v1/customers with
// stripe-go's defaults over resilient.New (before) and with
// StripeBackendConfig (after): the first call, and a series.
func TestStripe(t *testing.T) {
	for _, tc := range []struct {
		name          string
		row           string // the case's row in docs/sdks.md
		fault         stripeFault
		stripeErr     bool // the call's error is a *stripe.Error parsed from the envelope
		before, after measurement
	}{
		// stripe-go v85 does not retry an error it parsed from Stripe's
		// envelope (only a 409, a 429 lock_timeout, a Stripe-Should-Retry:
		// true): only resilient retries Stripe's own 500, with the key
		// stripe-go set. Its 5 retries spend half the host's budget; the
		// second call spends the rest, then one attempt per call.
		{"StripeEnvelope500", "Stripe's 500 (its JSON envelope)", stripeEnvelope500, true,
			measurement{6, 110, seriesCalls}, measurement{6, 110, seriesCalls}},
		// An answer that is not Stripe's envelope (a proxy's page, a
		// connection lost) is retried by stripe-go too: 6 + 6 + 1 on a
		// fresh Transport, whose budget then holds no retry, and stripe-go's
		// 3 attempts per call from then on.
		{"Proxy502", "a proxy's 502 (HTML)", stripeProxy502, false,
			measurement{13, 310, seriesCalls}, measurement{6, 110, seriesCalls}},
		{"ConnectionDropped", "connection lost after the write", stripeDropped, false,
			measurement{13, 310, seriesCalls}, measurement{6, 110, seriesCalls}},
		// Both layers read the hint.
		{"ShouldRetryFalse", "500 with `Stripe-Should-Retry: false`", stripeNoRetry500, true,
			measurement{1, 100, seriesCalls}, measurement{1, 100, seriesCalls}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeKeys, _ := stripeSeries(t, seriesCalls, stripeDefaults, tc.fault)
			after, afterKeys, err := stripeSeries(t, seriesCalls, func(base http.RoundTripper) *stripe.BackendConfig {
				return StripeBackendConfig(base)
			}, tc.fault)
			if before != tc.before || after != tc.after {
				t.Errorf("server attempts: defaults %+v, recipe %+v; want %+v, %+v", before, after, tc.before, tc.after)
			}
			// stripe-go sets one key per call, which resilient keeps on
			// every attempt of the call.
			if beforeKeys != seriesCalls || afterKeys != seriesCalls {
				t.Errorf("distinct idempotency keys: defaults %d, recipe %d; want %d (one per call)", beforeKeys, afterKeys, seriesCalls)
			}
			var se *stripe.Error
			if errors.As(err, &se) != tc.stripeErr {
				t.Errorf("recipe: error %T %v; want a *stripe.Error: %v", err, err, tc.stripeErr)
			} else if tc.stripeErr && se.HTTPStatusCode != http.StatusInternalServerError {
				t.Errorf("recipe: error status %d, want 500", se.HTTPStatusCode)
			}
			checkDocRow(t, "stripe-go", tc.row, before, after)
		})
	}
}

// TestStripeRecovers shows the recipe's retries succeeding: two 500s, then
// the customer is created on the third attempt, under one key.
func TestStripeRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(stripeCustomer),
			resilienttest.WithScript("POST /v1/customers", resilienttest.Respond(500), resilienttest.Respond(500)))
		cfg := StripeBackendConfig(srv.Base())
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

// TestStripeHungAttemptRetried: an attempt that gets no answer (a
// connection the network lost without a reset) is cut after stripe-go's
// own 80 s and resent with its key, as stripe-go alone resends it after
// its client's 80 s timeout, so that the customer is created within about
// as long; resilient's 5-minute budget alone would spend the call on that
// attempt and fail it. A resilient.WithAttemptTimeout among the recipe's
// opts replaces its 80 seconds, as its documentation says: the attempt is
// cut after the caller's 10 seconds.
func TestStripeHungAttemptRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []resilient.Option
		within time.Duration
	}{
		{"recipe's 80s", nil, 90 * time.Second},
		{"WithAttemptTimeout(10s)", []resilient.Option{resilient.WithAttemptTimeout(10 * time.Second)}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, http.HandlerFunc(stripeCustomer),
					resilienttest.WithScript("POST /v1/customers", resilienttest.Slow(time.Hour)))
				cfg := StripeBackendConfig(srv.Base(), tc.opts...)
				cfg.URL = stripe.String(srv.URL)
				cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
				sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
				start := time.Now()
				c, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")})
				if err != nil {
					t.Fatalf("Create after %v: %v", time.Since(start), err)
				}
				if d := time.Since(start); d > tc.within {
					t.Errorf("the customer was created after %v, want within %v", d, tc.within)
				}
				if c.ID != "cus_123" {
					t.Errorf("customer id %q, want cus_123", c.ID)
				}
				if got := srv.Hits("/v1/customers"); got != 2 {
					t.Errorf("%d server attempts, want 2", got)
				}
				if keys := srv.Keys("/v1/customers"); len(keys) != 1 {
					t.Errorf("%d distinct idempotency keys, want 1", len(keys))
				}
			})
		})
	}
}

// TestStripeCallOptions shows per-call options reaching resilient through
// stripe-go, which sends each request with the call's context: one call
// made with resilient.WithCallOptions(ctx, resilient.WithMaxRetries(0))
// makes one attempt, and its Report says so, while the next call, without
// them, retries as configured.
func TestStripeCallOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(stripeAPIError))
		cfg := StripeBackendConfig(srv.Base())
		cfg.URL = stripe.String(srv.URL)
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
		params := &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")}

		var r resilient.Report
		ctx := resilient.WithReport(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)), &r)
		if _, err := sc.V1Customers.Create(ctx, params); err == nil {
			t.Fatal("Create succeeded against a failing server")
		}
		if got := srv.Hits("/v1/customers"); got != 1 || r.Attempts != 1 || r.StatusCode != http.StatusInternalServerError {
			t.Errorf("with WithMaxRetries(0) for the call: %d server attempts, Report %+v; want 1 attempt and the 500", got, r)
		}
		if _, err := sc.V1Customers.Create(context.Background(), params); err == nil {
			t.Fatal("Create succeeded against a failing server")
		}
		if got := srv.Hits("/v1/customers") - 1; got != 6 {
			t.Errorf("the next call: %d server attempts, want 6", got)
		}
	})
}

// TestStripeStalledBody: Stripe answers, then its body stalls (an hour
// here). stripe-go's own client gives a request 80 seconds, its body
// included; through the recipe, whose bounds (resilient's budget, the
// caller's context, here none) end once resilient returns the response,
// the call would wait for the body as long as it stalls. The recipe's
// client bounds it: the call fails by resilient's budget of 5 minutes.
func TestStripeStalledBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"id":"cus_123",`))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(time.Hour):
			case <-r.Context().Done():
			}
		}))
		cfg := StripeBackendConfig(srv.Base())
		cfg.URL = stripe.String(srv.URL)
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
		start := time.Now()
		if _, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")}); err == nil {
			t.Error("Create succeeded with a body cut short")
		}
		if d := time.Since(start); d > resilient.DefaultMaxElapsed {
			t.Errorf("the call waited %v for a stalled body, want at most %v", d, resilient.DefaultMaxElapsed)
		}
	})
}

// TestStripeNewBackends shows that stripe.NewBackends(client), the
// shorter way to give stripe-go a client (stripe.SetHTTPClient too), keeps
// stripe-go's 2 retries: over resilient.New, one failing call reaches a
// fresh Transport's host 13 times, as the table's "before", where the
// recipe's backend configuration makes 6.
func TestStripeNewBackends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, stripeProxy502.api, stripeProxy502.opts...)
		client := &http.Client{Transport: resilient.New(toServer{strings.TrimPrefix(srv.URL, "http://"), srv.Base()})}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackends(client)))
		if _, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")}); err == nil {
			t.Fatal("Create succeeded against a failing server")
		}
		if got := srv.Hits("/v1/customers"); got != 13 {
			t.Errorf("stripe.NewBackends over resilient.New: %d server attempts, want 13", got)
		}
	})
}

// stalledBody answers 200 with the first bytes of a 100-byte body, then
// waits for stall (or the request's end) and sends the rest.
func stalledBody(stall time.Duration, first, rest string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(rest)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(first))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(stall):
			_, _ = w.Write([]byte(rest))
		case <-r.Context().Done():
		}
	}
}

// TestStripeMaxElapsedBoundsClient: the recipe's client bounds a call, its
// body included, by the budget the caller passes with
// resilient.WithMaxElapsed, not by the default's 5 minutes: a body that
// takes 10 minutes is read under a budget of 20 (an earlier recipe cut it
// at 5), and one that stalls is cut at 10 s under a budget of 10 s (the
// earlier recipe waited 5 minutes).
func TestStripeMaxElapsedBoundsClient(t *testing.T) {
	for _, tc := range []struct {
		budget, stall time.Duration
		ok            bool
	}{
		{20 * time.Minute, 10 * time.Minute, true},
		{10 * time.Second, time.Hour, false},
	} {
		t.Run(tc.budget.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t, stalledBody(tc.stall, `{"id":"cus_123",`, `"object":"customer"}`))
				cfg := StripeBackendConfig(srv.Base(), resilient.WithMaxElapsed(tc.budget))
				cfg.URL = stripe.String(srv.URL)
				cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
				sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
				start := time.Now()
				_, err := sc.V1Customers.Retrieve(context.Background(), "cus_123", nil)
				if (err == nil) != tc.ok {
					t.Errorf("Retrieve with WithMaxElapsed(%v), a body taking %v: err = %v, want success %v", tc.budget, tc.stall, err, tc.ok)
				}
				if d := time.Since(start); !tc.ok && d > tc.budget {
					t.Errorf("the call waited %v for a stalled body, want at most %v", d, tc.budget)
				}
			})
		})
	}
}

// TestStripeKeyKeptUnderOtherKeyHeader shows stripe-go's Idempotency-Key
// reaching Stripe when the Transport's options name another key header
// for another API (resilient.WithIdempotencyHeader("X-Idempotency-Key"),
// in options shared by every client of an application): the customer the
// API created before the connection was lost is replayed, not created
// again, when resilient resends the write. (Until 2026-12-01 resilient
// sent stripe-go's key under X-Idempotency-Key only, which Stripe does
// not read, and resent the write all the same: 2 customers for one call.)
func TestStripeKeyKeptUnderOtherKeyHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var created int
		stored := map[string]bool{} // Stripe's idempotency layer: by Idempotency-Key alone
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get("Idempotency-Key")
			if key == "" || !stored[key] {
				created++
				stored[key] = key != ""
			} else {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			stripeCustomer(w, r)
		}), resilienttest.WithScript("POST /v1/customers", resilienttest.DropAfter()))
		cfg := StripeBackendConfig(srv.Base(), resilient.WithIdempotencyHeader("X-Idempotency-Key"))
		cfg.URL = stripe.String(srv.URL)
		cfg.LeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
		sc := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
		if _, err := sc.V1Customers.Create(context.Background(), &stripe.CustomerCreateParams{Email: stripe.String("jenny@example.com")}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if got := srv.Hits("/v1/customers"); got != 2 || created != 1 {
			t.Errorf("%d server attempts created %d customers, want 2 attempts and 1 customer", got, created)
		}
	})
}
