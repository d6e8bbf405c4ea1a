package examples

import (
	"net/http"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/resilienthttp/resilient"
)

// NewDiscordSession returns a discordgo session for token ("Bot " and the
// bot's token) whose REST calls go through a resilient.Transport over base
// (nil means http.DefaultTransport), configured with opts, the only layer
// that retries. discordgo's retries are turned off: it resends a request
// answered 502 at once, 3 times, a POST included (Discord does not
// deduplicate by key: 4 messages posted for one call), and retries a 429
// after the wait its body gives, as often as it comes, without a bound
// nor the call's context; resilient retries 5xx and network errors with
// backoff under the write rule, and a 429 after its Retry-After, within
// WithMaxRetryAfter and 5 retries. A 429 resilient gives up on comes back
// as a *discordgo.RateLimitError.
//
// discordgo's own rate limiter stays on: it paces each route's bucket by
// the X-RateLimit-* headers of the responses resilient returns. resilient's
// is turned off: it would pace the same buckets again (it keeps a
// partition per X-RateLimit-Bucket too), and one limiter is enough. Each
// attempt is cut after 20 seconds without its response's headers, as
// discordgo's own client cuts each request. A body that stalls after them
// is the client's to cut: discordgo reads it once resilient returned the
// response, and makes most requests without a context, so the client's
// Timeout bounds each call, its body included, by resilient's budget (5
// minutes, or what opts set with resilient.WithMaxElapsed; zero leaves
// the call unbounded); without it, such a call would wait for as long as
// the body stalls (discordgo releases the route's bucket before it reads
// the body, so the bucket's other calls go on).
// Use it as
//
//	s, err := examples.NewDiscordSession("Bot "+token, nil)
func NewDiscordSession(token string, base http.RoundTripper, opts ...resilient.Option) (*discordgo.Session, error) {
	s, err := discordgo.New(token)
	if err != nil {
		return nil, err
	}
	opts = append([]resilient.Option{
		resilient.WithoutRateLimit(),                   // discordgo paces each route's bucket; resilient would pace them again
		resilient.WithAttemptTimeout(20 * time.Second), // discordgo's own client gives a request 20 s
	}, opts...)
	rt := resilient.New(base, opts...)
	s.Client = &http.Client{
		Transport: rt,
		Timeout:   rt.MaxElapsed(), // the budget opts set, over a call's body too: discordgo reads it without a context
	}
	s.MaxRestRetries = 0             // resilient retries; discordgo resends a 502 at once, POSTs included
	s.ShouldRetryOnRateLimit = false // resilient retries a 429, within bounds; discordgo would retry it again, without any
	return s, nil
}
