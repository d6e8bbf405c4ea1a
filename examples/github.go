package examples

import (
	"net/http"

	"github.com/google/go-github/v84/github"
	"github.com/resilienthttp/resilient"
)

// NewGitHubClient returns a go-github client whose transport is a
// resilient.Transport over base (nil means http.DefaultTransport),
// configured with opts. go-github does not retry, so resilient is the only
// layer that does, at its defaults. GitHub ignores Idempotency-Key, and
// resilient's write rule knows it without being told: a POST or PATCH is
// resent only when it provably never reached GitHub (a refused dial, a
// 429), so that a 502 after GitHub committed the write does not create a
// second issue. Do not set an Idempotency-Key yourself nor name GitHub
// with resilient.WithKeyHonoringHosts: either says that GitHub
// deduplicates writes, and they would then be resent. Authenticate as
// usual:
//
//	gh := examples.NewGitHubClient(nil).WithAuthToken(token)
func NewGitHubClient(base http.RoundTripper, opts ...resilient.Option) *github.Client {
	return github.NewClient(&http.Client{Transport: resilient.New(base, opts...)}) // the defaults: reads retried, writes never resent to GitHub after a 5xx
}
