package examples

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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
// the body, so the bucket's other calls go on). A 429 of the bot's global
// limit holds the session's calls of every route until its Retry-After
// has passed (see discordGlobal, the client's Transport, around
// resilient's; a resilient.WithClassifier among opts replaces the
// classifier that starts that hold; its Unwrap returns the
// resilient.Transport).
// Use it as
//
//	s, err := examples.NewDiscordSession("Bot "+token, nil)
func NewDiscordSession(token string, base http.RoundTripper, opts ...resilient.Option) (*discordgo.Session, error) {
	s, err := discordgo.New(token)
	if err != nil {
		return nil, err
	}
	global := &discordGlobal{}
	opts = append([]resilient.Option{
		resilient.WithoutRateLimit(),                   // discordgo paces each route's bucket; resilient would pace them again
		resilient.WithAttemptTimeout(20 * time.Second), // discordgo's own client gives a request 20 s
		resilient.WithClassifier(global.learn),         // a 429 of the bot's global limit holds every route: neither limiter sees to it here
	}, opts...)
	rt := resilient.New(base, opts...)
	global.next = rt
	s.Client = &http.Client{
		Transport: global,
		Timeout:   rt.MaxElapsed(), // the budget opts set, over a call's body too: discordgo reads it without a context
	}
	s.MaxRestRetries = 0             // resilient retries; discordgo resends a 502 at once, POSTs included
	s.ShouldRetryOnRateLimit = false // resilient retries a 429, within bounds; discordgo would retry it again, without any
	return s, nil
}

// discordGlobal is the RoundTripper of a NewDiscordSession's client, around
// its resilient.Transport: after a 429 of the bot's global rate limit
// (X-RateLimit-Global: true, or X-RateLimit-Scope: global), which Discord
// counts across every route, it holds the session's calls of every route
// until the 429's Retry-After has passed, as Discord asks. Neither limiter
// of the recipe does: resilient's is off, and discordgo's learns a global
// pause only from an X-RateLimit-Reset-After, which Discord's global 429
// does not carry, and only once resilient has returned that 429, after
// its retries. A call the pause would hold longer than
// resilient.DefaultMaxRetryAfter (a minute) in all, counted from its
// first hold however often the pause moves later, or past its context's
// deadline or its budget (resilient's, as set for the call: the hold is
// counted as spent of it), fails, unsent, with an error wrapping
// resilient.ErrRateLimited, as resilient's own limiter refuses one (at
// once, when the pause as it stands would); a Retry-After past
// resilient.MaxBelievedReset is not believed. The 429 g returns has no
// X-RateLimit-Reset-After: discordgo's limiter would start a global pause
// of its own from it, in a time.Sleep past every bound and context. The
// retries of calls already in resilient when the 429 came
// are not held: each waits for its own 429's Retry-After. It is safe for
// concurrent use.
type discordGlobal struct {
	next  http.RoundTripper         // the session's resilient.Transport
	until atomic.Pointer[time.Time] // when the global pause ends, with the monotonic clock's reading; nil for none
}

// RoundTrip sends req through g.next once the bot's global pause, if any,
// has passed: the pause as it stands when a wait for it ends, so that a
// global 429 drawn meanwhile, which moves its end later, holds req until
// that end too (a pause that has not moved holds req once), within
// resilient.DefaultMaxRetryAfter of req's first hold in all, and within
// req's budget, which resilient then counts the holds against. It removes
// the X-RateLimit-Reset-After of a 429 that names the global limit, from
// which discordgo would hold every route past those bounds.
func (g *discordGlobal) RoundTrip(req *http.Request) (*http.Response, error) {
	var limit, began time.Time // the latest end req's holds wait for, and the start of the first; set by the first
	for until, held := g.until.Load(), (*time.Time)(nil); until != nil && until != held; held, until = until, g.until.Load() {
		if err := g.hold(req.Context(), until, &limit, &began); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	if !began.IsZero() {
		// Held: resilient counts the hold as spent of the call's
		// budget, so that both together stay within it.
		if d := time.Since(began); d > 0 {
			req = req.WithContext(resilient.WithCallOptions(req.Context(), resilient.WithMaxElapsedSpent(d)))
		}
	}
	resp, err := g.next.RoundTrip(req)
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-RateLimit-Global") != "" {
		// discordgo would start a global pause of its own from this 429's
		// X-RateLimit-Reset-After, in a time.Sleep deaf to every bound and
		// context: g holds the calls instead (see learn).
		resp.Header.Del("X-RateLimit-Reset-After")
	}
	return resp, err
}

// holdFloor is the least a hold leaves of a call's budget and of its
// context's deadline, as resilient's own limiter leaves the first attempt
// it holds: a call sent with less is cut at once, the hold spent for
// nothing.
const holdFloor = time.Millisecond

// hold waits until the global pause that ends at *until has passed, or
// fails at once when it would wait past *limit or to less than holdFloor
// before ctx's deadline. A zero *limit is set to
// resilient.DefaultMaxRetryAfter from now, or to holdFloor before the end
// of the call's budget when that comes first (what ctx's call has of
// resilient's budget: see resilient.Transport.CallMaxElapsed), and *began
// to now, so that the holds of one call, however often the pause moves
// later, wait that long at most in all, and the call is refused at once,
// as resilient's own limiter refuses it, when it would be sent with less
// than holdFloor left of its budget or its deadline. The wait is measured
// by the monotonic clock, which a step of the wall clock (NTP, a VM
// resumed) does not move.
func (g *discordGlobal) hold(ctx context.Context, until *time.Time, limit, began *time.Time) error {
	end := *until
	now := time.Now()
	wait := end.Sub(now)
	if wait <= 0 {
		g.until.CompareAndSwap(until, nil)
		return nil
	}
	if limit.IsZero() {
		bound := resilient.DefaultMaxRetryAfter
		if rt, ok := g.next.(*resilient.Transport); ok {
			if b := rt.CallMaxElapsed(ctx); b > 0 && b-holdFloor < bound {
				bound = b - holdFloor
			}
		}
		*limit, *began = now.Add(bound), now
	}
	if d, ok := ctx.Deadline(); end.After(*limit) || ok && d.Sub(end) < holdFloor {
		return fmt.Errorf("%w: discord.com: the bot's global rate limit holds every route for %v", resilient.ErrRateLimited, wait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// learn is the recipe's resilient.Classifier: it keeps the default
// decision, and starts the global pause of a 429 of the bot's global
// limit, from its Retry-After (or X-RateLimit-Reset-After), in seconds.
func (g *discordGlobal) learn(resp *http.Response, _ *resilient.APIError, _ error, def resilient.Class) resilient.Class {
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests ||
		!strings.EqualFold(resp.Header.Get("X-RateLimit-Global"), "true") && !strings.EqualFold(resp.Header.Get("X-RateLimit-Scope"), "global") {
		return def
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		v = resp.Header.Get("X-RateLimit-Reset-After")
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(secs > 0) || secs > resilient.MaxBelievedReset.Seconds() {
		return def
	}
	end := time.Now().Add(time.Duration(secs * float64(time.Second))) // with the monotonic clock's reading
	for {
		cur := g.until.Load()
		if cur != nil && !cur.Before(end) || g.until.CompareAndSwap(cur, &end) {
			return def
		}
	}
}

// CloseIdleConnections closes the idle connections of the resilient.Transport
// below, as http.Client.CloseIdleConnections expects of its transport.
func (g *discordGlobal) CloseIdleConnections() {
	if c, ok := g.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Unwrap returns the session's resilient.Transport, under g: its
// HostState, ResetHost and MaxElapsed, which a type assertion of the
// client's Transport gave before g came around it, are reached with
// s.Client.Transport.(interface{ Unwrap() http.RoundTripper }).Unwrap().
func (g *discordGlobal) Unwrap() http.RoundTripper { return g.next }
