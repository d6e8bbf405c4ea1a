package examples

import (
	"net/http"

	"github.com/go-resty/resty/v2"
	"github.com/resilienthttp/resilient"
)

// NewRestyClient returns a resty client whose transport is a
// resilient.Transport over base (nil means http.DefaultTransport),
// configured with opts, and whose own retries stay off (resty's default):
// each of resty's attempts is a new call for resilient, with its own
// attempts and its own idempotency key, so resty's SetRetryCount(2) over
// resilient makes 3×6 attempts and 3 different writes. A response that
// failed after resilient's retries is returned as a *resty.Response with
// its status, not as an error.
func NewRestyClient(base http.RoundTripper, opts ...resilient.Option) *resty.Client {
	return resty.New().
		SetTransport(resilient.New(base, opts...)).
		SetRetryCount(0) // resilient retries; keep resty's retries (and retry conditions) off
}
