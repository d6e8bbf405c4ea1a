package examples

import (
	"net/http"

	"github.com/google/go-github/v84/github"
	"github.com/resilienthttp/resilient"
)

// NewGitHubClient returns a go-github client whose transport is a
// resilient.Transport over base (nil means http.DefaultTransport),
// configured with opts. go-github does not retry, so resilient is the only
// layer that does. GitHub ignores Idempotency-Key: without automatic keys,
// resilient resends a POST or PATCH only when it provably never reached
// GitHub (a refused dial, a 429), so that a 502 after GitHub committed the
// write does not create a second issue. Authenticate as usual:
//
//	gh := examples.NewGitHubClient(nil).WithAuthToken(token)
func NewGitHubClient(base http.RoundTripper, opts ...resilient.Option) *github.Client {
	opts = append([]resilient.Option{resilient.WithoutIdempotencyKeys()}, opts...) // GitHub does not deduplicate writes by key
	return github.NewClient(&http.Client{Transport: resilient.New(base, opts...)})
}
