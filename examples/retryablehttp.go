package examples

import (
	"context"
	"net/http"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/resilienthttp/resilient"
)

// NewRetryableClient returns a go-retryablehttp client, for code that must
// hand one to a library (HashiCorp's API clients take one), whose only
// retrying layer is a resilient.Transport over base, configured with opts.
// A nil base means the client's own pooled transport. go-retryablehttp's
// retries are turned off (its default of 4 retries over resilient makes 15
// attempts for one failing GET on a fresh Transport, and resends every POST
// after a 5xx, each time under a new idempotency key), and so is its
// give-up path: a response that failed after resilient's retries is
// returned as it is, with its status and unread body, instead of an error
// "giving up after 1 attempt(s)" with the body drained. Its Logger is
// nil: go-retryablehttp's default writes each request's URL to stderr
// whole, an API key in its query included; resilient.WithLogger records
// each attempt with the query left out. go-retryablehttp closes its
// client's idle connections after every call that ends in an error: the
// client's transport does not pass that on (see keepIdle), so close the
// idle connections of the base you passed when you are done with it.
func NewRetryableClient(base http.RoundTripper, opts ...resilient.Option) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	if base == nil {
		base = c.HTTPClient.Transport
	}
	c.HTTPClient.Transport = keepIdle{resilient.New(base, opts...)}
	c.RetryMax = 0         // resilient retries
	c.CheckRetry = noRetry // return every response as it is
	c.Logger = nil         // it logs each URL whole, a key in its query included; resilient.WithLogger redacts it
	return c
}

// noRetry is a retryablehttp.CheckRetry that never retries. Once ctx has
// ended, it returns the cause of its end (context.Cause), which
// go-retryablehttp returns to the caller in place of the request's error,
// so that the caller sees why, as through a plain client.
func noRetry(ctx context.Context, _ *http.Response, _ error) (bool, error) {
	return false, context.Cause(ctx)
}

// keepIdle is a RoundTripper without CloseIdleConnections, so that
// go-retryablehttp's close after each call that ends in an error, a call
// resilient's breaker or rate limiter refused at once included, does not
// close the connections of every other host the base keeps alive.
type keepIdle struct{ rt http.RoundTripper }

func (k keepIdle) RoundTrip(req *http.Request) (*http.Response, error) { return k.rt.RoundTrip(req) }
