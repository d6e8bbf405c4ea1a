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
// resilient makes 13 attempts for one failing GET on a fresh Transport, and
// resends a write that resilient would not resend, under a new key each
// time: 3 posts stored for one call at an API that ignores keys. A
// response that failed after resilient's retries is returned as a
// *resty.Response with its status, not as an error. For an API that
// deduplicates writes by key, pass resilient.WithKeyHonoringHosts with its
// host, or set the key on the request (SetHeader("Idempotency-Key", key)).
func NewRestyClient(base http.RoundTripper, opts ...resilient.Option) *resty.Client {
	return resty.New().
		SetTransport(resilient.New(base, opts...)).
		SetRetryCount(0) // resilient retries; keep resty's retries (and retry conditions) off
}
