package examples

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"

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
// *slack.RateLimitedError. Slack counts its rate limits per method and
// workspace: the Transport's rate-limit partitions follow them
// (slackMethod: the method and the request's token), so that the pause
// after one method's 429 holds neither the others nor that method in
// other workspaces, and one option serves the clients of every workspace
// of an app. The client's Timeout is resilient's budget (5 minutes, or
// what opts set with resilient.WithMaxElapsed; zero leaves the call
// unbounded but by its context), so that it bounds a call's body too:
// slack-go reads it once resilient returned the response, and its methods
// without Context send their requests with context.Background(), so that
// a body that stalled would otherwise hold the call for as long as it
// stalled. Use it as
//
//	api := slack.New(token, examples.SlackHTTPClient(nil))
func SlackHTTPClient(base http.RoundTripper, opts ...resilient.Option) slack.Option {
	opts = append([]resilient.Option{resilient.WithRateLimitKey(slackMethod)}, opts...)
	rt := resilient.New(base, opts...)
	return slack.OptionHTTPClient(&http.Client{
		Transport: rt,
		Timeout:   rt.MaxElapsed(), // the budget opts set, over a call's body too, which slack-go reads after resilient returns
	})
}

// slackMethod names the rate-limit partition of a request after its Web API
// method, its URL's host and path (https://slack.com/api/chat.postMessage),
// and its workspace: Slack counts each method's limit per workspace, so
// requests made with different tokens get partitions of their own, named
// with a one-way tag of the token, never the token. A request to another
// path is one to a response URL or a webhook
// (hooks.slack.com/actions/T…/…/{secret}, where slack-go posts a message
// sent with slack.MsgOptionResponseURL), whose path is a credential: its
// partition is named with a one-way tag of the path.
func slackMethod(r *http.Request) string {
	key := r.URL.Host + r.URL.Path
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		sum := sha256.Sum256([]byte(r.URL.Path))
		key = r.URL.Host + " url " + hex.EncodeToString(sum[:8])
	}
	if tok := slackToken(r); tok != "" {
		sum := sha256.Sum256([]byte(tok))
		key += " " + hex.EncodeToString(sum[:8])
	}
	return key
}

// slackToken returns the token of a Web API request: from its
// Authorization header, else from its form body, where slack-go sends it
// for most methods (read through GetBody, up to 1 MiB, in the form
// slack-go writes it); "" if it has none.
func slackToken(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		return strings.TrimPrefix(a, "Bearer ")
	}
	if r.GetBody == nil || r.ContentLength <= 0 || r.ContentLength > 1<<20 ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	body, err := r.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	form, err := io.ReadAll(io.LimitReader(body, r.ContentLength))
	if err != nil {
		return ""
	}
	for kv := range strings.SplitSeq(string(form), "&") {
		if tok, ok := strings.CutPrefix(kv, "token="); ok {
			return tok
		}
	}
	return ""
}
