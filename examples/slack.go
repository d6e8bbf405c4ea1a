package examples

import (
	"net/http"

	"github.com/resilienthttp/resilient"
	"github.com/slack-go/slack"
)

// SlackHTTPClient returns the slack-go option that sends a client's calls
// through a resilient.Transport over base (nil means
// http.DefaultTransport), configured with opts, the only layer that
// retries. slack-go retries nothing by default; leave it so (no
// OptionRetry nor OptionRetryConfig, whose attempts would each be a call of
// resilient's). Every Web API method is a POST, its reads included, and
// Slack does not deduplicate by key: resilient resends a call after a 429
// (Retry-After, within WithMaxRetryAfter) or a refused connection, never
// after a 5xx or a connection lost after the write, so that a message is
// not posted twice. A 429 resilient gives up on comes back as a
// *slack.RateLimitedError. Slack counts its rate limits per method: the
// Transport's rate-limit partitions follow them (slackMethod), so that the
// pause after one method's 429 does not hold the others. Use it as
//
//	api := slack.New(token, examples.SlackHTTPClient(nil))
func SlackHTTPClient(base http.RoundTripper, opts ...resilient.Option) slack.Option {
	opts = append([]resilient.Option{resilient.WithRateLimitKey(slackMethod)}, opts...)
	return slack.OptionHTTPClient(&http.Client{Transport: resilient.New(base, opts...)})
}

// slackMethod names the rate-limit partition of a request after its Web API
// method: its URL's host and path (https://slack.com/api/chat.postMessage).
func slackMethod(r *http.Request) string { return r.URL.Host + r.URL.Path }
