package resilient

import (
	"fmt"
	"net/http"

	"golang.org/x/time/rate"
)

// This file holds the options of the rate limiter.

// WithRateLimit sets a static client-side limit of r attempts per second with
// bursts of burst, applied to each partition (by default one per host,
// class and credential, see WithRateLimitKey). Without it the Transport paces nothing until
// a server announces its quota. It panics if r is not positive, or if burst
// is below 1 for a finite r; r = rate.Inf sets no static limit, as by
// default.
//
// Whether or not a static limit is set, the Transport learns from the
// rate-limit headers of every response (unless WithoutRateLimit is given),
// with one exception that keeps successes cheap where no host announces a
// quota: after 32 responses in a row that announce none, it reads one
// success in 8, at random, until a response announces one again (every
// response that is not a success is read). The families it reads:
//
//   - X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, and the
//     same in the X-Rate-Limit-* spelling;
//   - the IETF draft's structured fields RateLimit: "default";r=50;t=30
//     (r remaining, t seconds to the reset) and RateLimit-Policy:
//     "default";q=100;w=60 (q the quota, w the window in seconds); with
//     several items, the one with the least remaining binds (of several
//     with as little left, the one whose reset is the latest, one
//     without a reset losing to one with); a field sent on several lines
//     is one list, as RFC 9651 reads it;
//   - the older drafts' RateLimit-Limit, RateLimit-Remaining and
//     RateLimit-Reset (a limit such as "100, 100;w=60" gives its window,
//     and so does a RateLimit-Policy beside them: of several policies,
//     the one whose quota is the limit announced, whatever its place);
//   - vendors' own: OpenAI's x-ratelimit-{limit,remaining,reset}-requests
//     (resets as durations such as "6m0s") and Anthropic's
//     anthropic-ratelimit-requests-*, whose quotas refill continuously and
//     whose reset is when one is full again: a spent one holds the next
//     request until one request is back (a second of 60 a minute), not
//     until that reset; their tokens quotas are not read, for how many
//     tokens a request needs is unknown and a spent one may reset minutes
//     ahead, while the server's 429 says how long to wait; Shopify's
//     X-Shopify-Shop-Api-Call-Limit ("32/40", a bucket that empties in 20
//     seconds: 40 leaking 2 a second, Shopify Plus's 400 leaking 20), and
//     those of WithRateLimitParser;
//   - Retry-After, which takes precedence over all of them.
//
// The first family present wins, in that order. A response that names its
// quota (X-RateLimit-Resource, as GitHub's core, search and graphql) is
// learned in a partition of that quota, and requests to the same first path
// segment go to it from then on, unless responses to that segment named two
// quotas (GitHub's /search/code counts against code_search, its other
// searches against search): its requests then go to the host's partition of
// their class. A response that names its route's bucket
// (X-RateLimit-Bucket, as Discord's, whose channels and webhooks each
// have their own) is learned in a partition of that bucket and of the
// route's top-level resource, the id of its channel, guild or webhook (Discord names one
// bucket for every channel of a route, and counts each channel apart: a
// channel's spent bucket holds no other channel), and requests
// with the same method and path go to it from then on (unless that route
// named two buckets): posting to many webhooks of one host is paced per
// webhook, as the server counts, not at one webhook's pace (a 429 of
// Discord's global limit, X-RateLimit-Global: true, pauses them all, in every
// member of a fleet sharing a QuotaStore). A host whose
// routes announce different plain limits (X-RateLimit-Limit or
// X-Rate-Limit-Limit without a policy: X counts GET /2/users/me at 75 per
// 15 minutes, its searches at 450) is taken to count each endpoint apart:
// each limit gets a partition, and requests with the same method and path
// go to the partition of the limit their route announced. While a plain
// limit is spent and its reset is further than the call may wait, one
// request of another route per window goes through instead of being
// refused, for its quota may be its own (see ratelimit_resource.go). A reset is
// told apart by its form: a value that starts with
// a digit and contains 'T' or '-' is an ISO 8601 time with a zone: RFC
// 3339's (2026-02-17T14:00:00Z, also spelled with a lowercase t or z, or a
// space for the T), one to the minute (2026-02-17T14:00Z, as
// Jira sends it) or one whose offset has no colon
// (2026-02-17T15:00:00+0100); one that starts with a letter is an HTTP date; a
// number (decimals allowed) of at least 1e11 is a Unix time in
// milliseconds, of at least 1e8 a Unix time in seconds, and a smaller one a
// number of seconds from now. Malformed values are ignored, one by one; a
// value that a proxy merged with copies of itself ("5, 5") is read as one.
// A response that was not throttled and announces a limit of 0 (in any
// family, or from a parser) teaches no quota: it answered a request of
// which it says none are allowed, as APIs say of a quota they do not
// meter.
// Times on the server's clock (dates, Unix times, and a Retry-After date)
// are read against the response's Date header when it differs from the
// local clock by 2 seconds or more: a server whose clock is 3 minutes ahead
// and asks for a pause until its Date plus 10 seconds is paused 10 seconds.
//
// What lies further ahead than MaxBelievedReset (a pause, a reset) or is
// longer than it (a policy window) is not believed: the partition learns
// nothing from it, and the response is returned to the caller as usual (a
// 429 whose wait is longer than WithMaxRetryAfter's limit at once). So a
// pause always ends within MaxBelievedReset, and Transport.ResetHost ends
// it earlier.
//
// What the Transport does with them, per partition (until a server has
// announced something for a partition, its attempts go unpaced, unless a
// static limit is set):
//
//   - When Remaining is 0, or not more than the attempts already in flight,
//     new attempts wait for the reset (for a quota refilled continuously,
//     until enough of it is back), spread by a small jitter (at most 10%
//     of the wait and one second, and none that would pass the call's
//     deadline), or until a response announces a new window.
//   - A Throttled response (a 429 by default) with a Retry-After or a reset,
//     or a 503 with a Retry-After (or a reset and Remaining 0), pauses the
//     whole partition until then: no attempt is sent to it during the pause,
//     and the retry of the throttled request waits the same pause (the
//     retry of another call that the pause would refuse when its backoff
//     ends, past the call's deadline or WithMaxRetryAfter, is refused at
//     once, without the backoff). A 503's Retry-After longer than
//     WithMaxRetryAfter's limit, which no call would wait out, pauses
//     nothing: the server is down, not out of quota, and the calls that
//     follow find out whether it is back (the breaker sees to the
//     outage). A throttled response whose quota is not spent
//     (Remaining above 0) and that has no Retry-After pauses a minute at
//     most, not until the reset: another limit throttled it (GitHub's
//     secondary limits), whose end that reset does not tell.
//   - When the server announces its limit and a window (the policy's w, or
//     the longest time to a reset seen, forgotten when no response comes
//     close to it for two of its windows, or for MaxBelievedReset if that
//     is shorter, while at least half of the quota is left (a response
//     without a reset forgets it so too, unless it is throttled or
//     announces no quota, a Retry-After alone: neither says that the
//     quota is not in use); a window goes
//     with the limit it was learned with, forgotten when a response
//     announces another limit without a window, the new limit paced once
//     its window is known and the old limit's pace dropped until then; and
//     the quota
//     itself, once no response has announced a rate-limit value for
//     MaxBelievedReset), attempts are paced at 95% of
//     limit/window (of remaining/window, when a response says that more
//     remain than its limit), the margin keeping clear of resets announced to the
//     second, with bursts of up to the remaining quota: many goroutines
//     sharing a partition rarely see a 429 and still use most of the quota,
//     and a client far below its quota is not slowed. With a static limit
//     too, the lower rate and the smaller burst apply.
//
// A wait respects the request's context. A wait that would pass the
// context's deadline, or a wait the server set (a pause, a spent quota's
// reset, or its pace) that is longer than WithMaxRetryAfter's limit, is not
// started: the attempt fails at once, its body is closed, and the error
// wraps ErrRateLimited and says how long the wait would have been. The
// limit bounds an attempt's waits for what the server set in all, not
// each one: an attempt that waited out one pause and finds a new one
// (another call's 429 answered meanwhile), or a turn of the server's pace
// further ahead, waits for it only as long as the limit still allows,
// and fails so otherwise. One exception: at a spent quota's reset (or a
// pause's end) the first attempt goes, and one whose turn of the pace
// would pass the limit waits for that attempt's answer, a tenth of the
// limit past the reset at most and never past its deadline: a new window
// of the spent limit that the answer announces (with its reset, or, from
// a server that announces its reset only when the quota runs low, a count
// above none without one, of a request sent after the spent window's
// reset) fills the pace's bucket
// (a static limit keeps its own tokens), and the attempt goes at once; an answer that fills nothing leaves its
// turn past the limit, and it fails as above, as it does when no answer
// has come by the end of that tenth. A window left with a few requests,
// not spent, is followed so too: the new window that the answer to a
// request sent after its reset announces fills the pace's bucket, which
// kept the old window's last count as its burst. Nor is
// a wait (a pause, a spent quota's, a turn of the pace, a token of a
// QuotaStore) past whose end the host's circuit breaker stays open: the
// attempt goes on to the breaker at once, which refuses it
// (ErrCircuitOpen); an attempt whose breaker is open when it would take a
// QuotaStore's token goes on to it without one, which could not be given
// back. An attempt that took its turn of the pace and that the
// breaker or WithMaxInFlight then refuses without sending it, that
// net/http refuses to send (the caller's mistake, a RequestError: a
// header value with a newline, say; not a body that breaks as it is
// sent, whose header the host may have got), or a hedged copy not sent because
// its attempt ended meanwhile, gives its turn back to the next attempt:
// refusals spend none of the host's pace. So does an
// attempt whose caller gives up while it waits for its turn, or that is
// refused then: the next attempt that must wait takes that turn when it
// comes, not one behind it. With a QuotaStore, an attempt takes its turn
// of the pace once the store lets it go, so that it is sent at that
// turn; one the store holds for later gives back the turn it waited for,
// and takes one again after the store's wait. A turn given back never
// lets the host get more requests than the pace allows: it is lost
// instead (a caller waits a turn longer) when the pace cannot keep it
// exactly, as the part of a token refilled when it was given back, a
// token given back while other attempts wait for turns of a burst of 1,
// or a turn taken before the server's answers changed the pace's rate.
// A turn or token of a learned pace that Transport.ResetHost forgot is
// spent: an attempt that waited for it takes a token of the pace learned
// since, if any, whose bucket starts full, and one refused below gives
// back nothing. So is a turn of a pace the server's answers drop (above:
// its window or quota forgotten): the attempt waiting for it wakes, and
// goes as the static limit, if any, lets it. A turn an attempt waits for when the server's answers
// raise the pace's rate comes at the new rate, ahead of the turns taken
// since: sent at the old one, it went together with them, faster than the
// new pace (or the static limit that caps it) allows.
// Each attempt's announced values and local wait are given to observers
// as Attempt.RateLimit and Attempt.LocalWait.
//
// Partitions are kept in a table of at most 4096, the least recently used
// evicted first, those whose pause or spent quota holds their attempts
// after the others, and dropped after 10 minutes unused once their reset
// and pause have passed.
func WithRateLimit(r rate.Limit, burst int) Option {
	if !(r > 0) { // NaN too
		panic(fmt.Sprintf("resilient: WithRateLimit: rate %v is not positive", r))
	}
	if r != rate.Inf && burst < 1 {
		panic(fmt.Sprintf("resilient: WithRateLimit: burst %d is below 1", burst))
	}
	return func(c *config) {
		perTransport(c, "WithRateLimit")
		c.noRateLimit = false
		c.rateLimit, c.rateBurst = r, burst
	}
}

// WithoutRateLimit turns the client-side rate limiter off: no pacing, no
// learning from rate-limit headers, no shared pause after a 429. A
// Retry-After still delays the retry of the request that received it, and
// so does the reset of a throttled answer without one (X-RateLimit-Reset
// and the like, read as the limiter reads them, a WithRateLimitParser's
// included): the retry waits until the quota is available again, and the
// answer is returned at once when that is further away than
// WithMaxRetryAfter.
func WithoutRateLimit() Option {
	return func(c *config) {
		perTransport(c, "WithoutRateLimit")
		c.noRateLimit = true
	}
}

// WithRateLimitKey sets the function that names a request's partition of the
// rate limiter. Requests with the same name share their learned quota, their
// pause and their static limit. The default partition is the URL's scheme
// and host (host[:port], in any case, with or without the scheme's
// default port, and with or without the final dot of a fully-qualified
// name: API.example.com, api.example.com:443 and api.example.com. are one
// host over https; for a request whose Host header names a virtual host
// behind the URL's address, that host: see BreakerSettings.Key), the class of the method: reads (GET, HEAD,
// OPTIONS) apart from writes (every other method), because servers usually
// count them apart; and the request's credential, because servers count
// quotas per user token or API key: requests with different Authorization
// headers (those that AWS Signature Version 4 or Google Cloud Storage's
// GOOG4-HMAC-SHA256 signs with one access key count as one, and so do those
// that Azure Storage's SharedKey signs for one account, that OAuth 1.0a
// signs for one consumer key and token, and that HTTP Digest sends for one
// username; else X-Api-Key, either one also set by hand in lower case; else
// Api-Key (Azure OpenAI's), X-Goog-Api-Key, Ocp-Apim-Subscription-Key,
// X-Auth-Token, Private-Token or X-Access-Token, each also in lower case;
// else the URL's user
// information, which net/http sends as Basic
// authentication; else an access_token, api_key or apikey query
// parameter, Facebook's Graph API's way) get partitions of their own, so that one
// tenant's 429 or spent quota holds none of the others' (the partition's
// name carries a one-way tag of the credential, never the credential). A
// credential set below the Transport (an SDK's or oauth2's RoundTripper
// under it) is not seen: those requests share the host's partitions. A
// function returning "" exempts the request from the limiter (the retry of
// its throttled answer still waits, as with WithoutRateLimit). A nil fn
// restores the default. The name appears in the errors of refused
// attempts: derive it from a credential only through a hash. A name
// longer than 255 bytes is held, shown and given to a QuotaStore as its
// first bytes, "…" and 32 hex digits of its SHA-256 (computed on each
// attempt): two long names that differ anywhere name two partitions. fn
// may read the body as BreakerSettings.Key may (see there).
//
// For example, a server that counts all requests of an API key together,
// reads and writes alike, each key apart:
//
//	resilient.WithRateLimitKey(func(r *http.Request) string {
//		sum := sha256.Sum256([]byte(r.Header.Get("Authorization")))
//		return r.URL.Host + " " + hex.EncodeToString(sum[:8])
//	})
func WithRateLimitKey(fn func(*http.Request) string) Option {
	return func(c *config) {
		perTransport(c, "WithRateLimitKey")
		c.rateLimitKey = fn
	}
}
