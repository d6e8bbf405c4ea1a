package examples

import (
	"net/http"

	"github.com/go-resty/resty/v2"
	"github.com/resilienthttp/resilient"
)

// NewRestyClient returns a resty client whose transport is a
// resilient.Transport over base, configured with opts, and whose own
// retries stay off (resty's default). A nil base means the transport
// resty.New makes for its client, so that the client connects as a plain
// resty client does (its pool keeps GOMAXPROCS+1 idle connections per
// host, where http.DefaultTransport keeps 2). With resty's retries on,
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
	c := resty.New()
	if base == nil {
		base = c.GetClient().Transport // resty's own: its pool and dial settings, not http.DefaultTransport's
	}
	return c.SetTransport(resilient.New(base, opts...)).
		SetRetryCount(0) // resilient retries; keep resty's retries (and retry conditions) off
}
