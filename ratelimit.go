package resilient

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Bounds of the rate limiter's partition table: at most maxRatePartitions
// partitions are kept, the least recently used one is evicted to make room,
// and a partition unused for ratePartitionIdle whose announced reset and
// pause have passed is dropped.
const (
	maxRatePartitions = 4096
	ratePartitionIdle = 10 * time.Minute
)

// paceShare of the announced quota is used when pacing, so that the
// announced reset, often rounded to the second, is rarely waited for.
const paceShare = 0.95

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
//     several items, the one with the least remaining binds;
//   - the older drafts' RateLimit-Limit, RateLimit-Remaining and
//     RateLimit-Reset (a limit such as "100, 100;w=60" gives its window);
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
// have their own) is learned in a partition of that bucket, and requests
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
// a digit and contains 'T' or '-' is an RFC 3339 time
// (2026-02-17T14:00:00Z); one that starts with a letter is an HTTP date; a
// number (decimals allowed) of at least 1e11 is a Unix time in
// milliseconds, of at least 1e8 a Unix time in seconds, and a smaller one a
// number of seconds from now. Malformed values are ignored, one by one.
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
//     is shorter, while at least half of the quota is left; and the quota
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
// wraps ErrRateLimited and says how long the wait would have been. Nor is
// a wait (a pause, a spent quota's, a turn of the pace, a token of a
// QuotaStore) past whose end the host's circuit breaker stays open: the
// attempt goes on to the breaker at once, which refuses it
// (ErrCircuitOpen). An attempt that took its turn of the pace and that the
// breaker or WithMaxInFlight then refuses without sending it gives its
// turn back to the next attempt: refusals spend none of the host's pace.
// Each attempt's announced values and local wait are given to observers
// as Attempt.RateLimit and Attempt.LocalWait.
//
// Partitions are kept in a table of at most 4096, the least recently used
// evicted first, and dropped after 10 minutes unused once their reset and
// pause have passed.
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
// host over https), the class of the method: reads (GET, HEAD,
// OPTIONS) apart from writes (every other method), because servers usually
// count them apart; and the request's credential, because servers count
// quotas per user token or API key: requests with different Authorization
// headers (those that AWS Signature Version 4 signs with one access key
// count as one, and so do those that OAuth 1.0a signs for one consumer key
// and token; else X-Api-Key, else an access_token, api_key or apikey query
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
// attempt): two long names that differ anywhere name two partitions.
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

// partKey names a partition. The default key is the scheme, the host and
// the class; a key from WithRateLimitKey is held in host with an empty
// scheme. It is a comparable struct so that the default key needs no string
// built per request.
type partKey struct {
	scheme, host string
	write        bool
	resource     string // the quota the server names (see ratelimit_resource.go); "" for none
	cred         uint64 // the request's credential, as credentialOf fingerprints it; 0 for none
}

// String returns e.g. "https://api.example.com reads", followed by the tag
// of its credential when it has one (credentialTag, a one-way digest of its
// fingerprint): "https://api.example.com reads, credential 9c1e0f2a7b3d4e5f".
func (k partKey) String() string {
	if k.scheme == "" {
		return k.host
	}
	var s string
	switch {
	case k.resource != "":
		s = k.scheme + "://" + k.host + " " + k.resource
	case k.write:
		s = k.scheme + "://" + k.host + " writes"
	default:
		s = k.scheme + "://" + k.host + " reads"
	}
	if k.cred != 0 {
		s += ", credential " + credentialTag(k.cred)
	}
	return s
}

// isReadMethod reports whether method is counted as a read: GET (or empty),
// HEAD and OPTIONS.
func isReadMethod(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// rateLimiter is the state shared by the attempts of one Transport: a
// bounded table of partitions. It is safe for concurrent use.
type rateLimiter struct {
	static    rate.Limit // 0: none
	burst     int
	keyFn     func(*http.Request) string
	parsers   []RateLimitParser // WithRateLimitParser
	resources resources         // routes of the quotas servers name
	maxWait   time.Duration     // the longest wait a server may set (WithMaxRetryAfter); a call applies its own
	rand      func(int64) int64
	quota     QuotaStore // shares the partitions' state; nil for none (quota.go)
	maxParts  int
	idle      time.Duration
	headers   headerWatch // which responses are read for rate-limit headers
	// breakers are the Transport's circuit breakers, nil when off: an
	// attempt whose breaker will still refuse it when its wait (a pause, a
	// spent quota, its turn of the pace) ends goes on to it at once (see
	// skipWait).
	breakers *breakerSet
	// hostPauses holds the pauses of hosts' global limits in force (see
	// pauseHost), for the partitions made or cleared during one.
	hostPauses hostPauses
	// names holds the canonical names of the hosts spelled otherwise.
	names hostNames
	// globals holds the QuotaStore's state of the global limits of the
	// hosts and credentials that announced quotas of their own (see
	// fleetGlobal); guarded by mu.
	globals map[hostKey]*globalLimit

	// Looking a partition up takes no lock (a hostTable). Inserts,
	// removals and the list that orders the partitions by use are guarded
	// by mu. An attempt records its use in a flag; a pass that meets a
	// used partition at the back of the list moves it to the front with
	// the pass's time (a second chance), so that hits write nothing
	// shared but the flag, once.
	oldest atomic.Int64                  // lastUsed of the list's back, as a time since epoch (see since); 0 when empty
	epoch  time.Time                     // an hour before the limiter was made
	parts  hostTable[partKey, partition] // written under mu
	mu     sync.Mutex
	lru    list[partition, *partition] // most recently seen at the front
}

func newRateLimiter(c *config) *rateLimiter {
	static := c.rateLimit
	if static == rate.Inf {
		static = 0
	}
	rl := &rateLimiter{
		static:   static,
		burst:    c.rateBurst,
		keyFn:    c.rateLimitKey,
		parsers:  c.rateParsers,
		maxWait:  c.maxRetryAfter,
		rand:     c.rand,
		quota:    c.quotaStore,
		maxParts: maxRatePartitions,
		idle:     ratePartitionIdle,
		epoch:    time.Now().Add(-time.Hour),
	}
	rl.parts.init()
	rl.names.init()
	return rl
}

// partition is the state of one host and class (or one key).
type partition struct {
	key  partKey
	node tableNode[partKey, partition] // holds it in the table

	// used is set by the attempts that find the partition, and cleared by
	// the passes that record their time in lastUsed.
	used atomic.Bool

	// Guarded by rateLimiter.mu.
	listNode[partition]
	lastUsed time.Time // its creation, or the last pass that found it used
	removed  bool

	mu        sync.Mutex
	lim       *rate.Limiter // nil: no pacing
	learned   bool          // lim paces by the server's announced quota
	paceRate  rate.Limit    // the rate and burst last given to lim by pace
	paceBurst int
	// owed counts the tokens of lim that attempts took and gave back
	// unused (see giveBack), which lim itself cannot take back: the next
	// attempts that find lim empty take them instead of waiting. With
	// lim's tokens, they never pass lim's burst (see capOwed).
	owed int
	announced
	inflight int           // attempts sent and not yet answered
	reopened chan struct{} // closed when the quota gate may have opened; nil when nobody waits

	// quota is the state shared through a QuotaStore; nil for none
	// (quota.go); watch is quota when it is a QuotaWatcher, and taker
	// when it is a QuotaDeadlineTaker, else nil.
	quota QuotaPartition
	watch QuotaWatcher
	taker QuotaDeadlineTaker
	// global is the store's state of the global limit of p's host and
	// credential, whose pause holds p too; nil for none (see
	// fleetGlobal). Set once, when p is made or its host learns.
	global atomic.Pointer[globalLimit]
	// handedOver is set once a split handed the quota that quota paces
	// over to a plain limit's partition (see splitPlain): the routes
	// still sent to p do not spend it, and p takes none of its tokens
	// until p learns a quota again. Guarded by mu.
	handedOver bool
}

func (p *partition) links() *listNode[partition] { return &p.listNode }

// announced is what a partition learned from the server's answers.
type announced struct {
	limit        int           // announced limit; 0 when unknown
	window       time.Duration // announced (policy) or estimated window; 0 when unknown
	policyWindow bool          // window was announced, not estimated
	windowSeen   time.Time     // when an estimated window was last seen (see update)
	heard        time.Time     // when a response last announced a rate-limit value (see unpace)
	remaining    int           // announced remaining; valid while reset is ahead
	reset        time.Time     // when remaining resets; zero when unknown
	// A quota refilled continuously (OpenAI's, Anthropic's: their reset
	// is when it is full again) gets one request back every refillUnit
	// from refillFrom, the time remaining was announced; 0 for a quota
	// whose window resets at once.
	refillUnit time.Duration
	refillFrom time.Time
	pauseUntil time.Time // no attempt is sent before it
	// plainMethod and plainPath are the route of the last response
	// learned when it announced a plain limit (see learnPlain), else "";
	// probed is the reset of the window in which a request of another
	// route was let through its spent quota (see mayProbe): none is let
	// through again before it, even when the reset moved (a reset in
	// seconds from the response moves with each answer's delay).
	plainMethod, plainPath string
	probed                 time.Time
}

// key returns the partition key of req; false exempts req from the limiter.
// It sets the fields of k one by one: a composite literal of a struct this
// size is built aside and copied, which costs more than the rest. The
// credential's fingerprint is taken only when cred is set: a limiter that
// holds no partition and sets no static limit has none to find, and the
// response, if it announces a quota, takes it then (see withCred).
func (rl *rateLimiter) key(req *http.Request, cred bool) (k partKey, ok bool) {
	if rl.keyFn != nil {
		k.host = customKey(rl.keyFn(req))
		return k, k.host != ""
	}
	k.scheme, k.host = urlKey(req.URL.Scheme, req.URL.Host)
	k.write = !isReadMethod(req.Method)
	if cred {
		k.cred = credentialOf(req)
	}
	if cred || rl.resources.n.Load() != 0 {
		// A partition may be found: under the host's canonical name.
		// (Until one exists, learn names the first: see canonical.)
		k = rl.canonical(k)
	}
	if rl.resources.n.Load() != 0 {
		k = rl.resources.of(k, req)
	}
	return k, true
}

// canonical returns k, a default key, with its scheme and host in the
// form partitions are kept under: lower-cased, without the scheme's
// default port nor a fully-qualified name's final dot, so that
// http://API.example.com:80, http://api.example.com. and
// http://api.example.com share one state, as they are one host. It
// allocates only for a spelling it meets for the first time (see
// hostNames).
func (rl *rateLimiter) canonical(k partKey) partKey {
	k.scheme, k.host = rl.names.canonical(k.scheme, k.host)
	return k
}

// needsCred reports whether the key of an attempt needs its credential's
// fingerprint before the attempt is sent: when a partition may be found or
// made for it.
func (rl *rateLimiter) needsCred() bool {
	return rl.keyFn == nil && (rl.parts.len() != 0 || rl.always())
}

// always reports whether every limited attempt goes through a partition,
// made for it when none exists: with a static limit, which paces it, and
// with a QuotaStore, whose pause (a 429 another member of the fleet got)
// holds it even when no server has announced anything to this Transport.
func (rl *rateLimiter) always() bool {
	return rl.static > 0 || rl.quota != nil
}

// lookup returns the partition of k, creating it when create is set; it
// returns nil for an unknown k otherwise. Only a creation takes the lock,
// and a lookup that finds the back of the list unseen for the idle time:
// it then drops idle partitions, at most two, so that the table shrinks
// back after a burst of hosts without a sweep. It reads the clock only when
// the table is not empty, and only when clock has no time yet.
func (rl *rateLimiter) lookup(k partKey, create bool, clock *lazyNow) *partition {
	if !create && rl.parts.len() == 0 {
		return nil // no server has spoken: the happy path takes no lock
	}
	h := rl.parts.hashOf(k)
	p := rl.parts.find(k, h)
	if p != nil && !p.used.Load() {
		p.used.Store(true)
	}
	if o := rl.oldest.Load(); o != 0 && rl.since(clock.get())-o >= int64(rl.idle) {
		rl.mu.Lock()
		rl.dropIdle(clock.get(), k)
		rl.mu.Unlock()
	}
	if p != nil || !create {
		return p // nil: a host that announced nothing, no lock either
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	now := clock.get()
	if p := rl.parts.find(k, h); p != nil { // another goroutine made it
		return p
	}
	for rl.parts.len() >= rl.maxParts && rl.lru.tail != nil {
		rl.evictTail(now)
	}
	k = k.clone()
	p = rl.newPartition(k)
	p.lastUsed = now
	rl.parts.insert(k, h, p, &p.node)
	rl.pushFront(p)
	return p
}

// dropIdle removes at most two idle partitions from the back of the list,
// never k's, giving the used ones met on the way their second chance; rl.mu
// is held.
func (rl *rateLimiter) dropIdle(now time.Time, k partKey) {
	dropped := 0
	for steps := 0; steps < 8 && dropped < 2 && rl.lru.tail != nil && rl.lru.tail.key != k; steps++ {
		p := rl.lru.tail
		switch {
		case p.used.Load():
			p.used.Store(false)
			p.lastUsed = now
			rl.unlink(p)
			rl.pushFront(p)
		case rl.evictable(p, now):
			rl.remove(p)
			dropped++
		default:
			return
		}
	}
}

// evictTail makes room: it removes the least recently used partition,
// after giving the used ones at the back their second chance (at most one
// turn of the list); rl.mu is held.
func (rl *rateLimiter) evictTail(now time.Time) {
	for turn := rl.parts.len(); turn > 0 && rl.lru.tail.used.Load(); turn-- {
		p := rl.lru.tail
		p.used.Store(false)
		p.lastUsed = now
		rl.unlink(p)
		rl.pushFront(p)
	}
	rl.remove(rl.lru.tail)
}

func (rl *rateLimiter) newPartition(k partKey) *partition {
	p := &partition{key: k, quota: rl.quotaPartition(k)}
	p.watch, _ = p.quota.(QuotaWatcher)
	p.taker, _ = p.quota.(QuotaDeadlineTaker)
	if rl.static > 0 {
		p.lim = rate.NewLimiter(rl.static, rl.burst)
	}
	p.pauseUntil = rl.hostPauses.of(k) // a global limit's pause in force
	if g := rl.globalOf(k); g != nil {
		p.global.Store(g) // the fleet's
	}
	return p
}

// evictable reports whether p has been idle long enough and holds nothing
// that is still in force. rl.mu is held.
func (rl *rateLimiter) evictable(p *partition, now time.Time) bool {
	if now.Sub(p.lastUsed) < rl.idle {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight == 0 && !p.pauseUntil.After(now) && !p.reset.After(now)
}

func (rl *rateLimiter) remove(p *partition) {
	rl.unlink(p)
	p.removed = true
	rl.parts.deleteNode(&p.node)
}

func (rl *rateLimiter) unlink(p *partition) {
	rl.lru.remove(p)
	rl.setOldest()
}

func (rl *rateLimiter) pushFront(p *partition) {
	rl.lru.pushFront(p)
	rl.setOldest()
}

// setOldest records the back's lastUsed for the lookups; rl.mu is held.
func (rl *rateLimiter) setOldest() {
	if rl.lru.tail == nil {
		rl.oldest.Store(0)
		return
	}
	rl.oldest.Store(rl.since(rl.lru.tail.lastUsed))
}

// since returns t in nanoseconds since rl.epoch, on the monotonic clock
// when t has a reading of it (time.Now's and callClock's have), as the
// evictions measure idleness: a step of the wall clock (NTP, a resumed
// virtual machine) neither holds an idle partition nor makes every lookup
// sweep. The epoch lies an hour back, so that no time is 0, oldest's
// "empty".
func (rl *rateLimiter) since(t time.Time) int64 {
	return int64(t.Sub(rl.epoch))
}

// part returns the partition of k, or nil, without recording a use.
func (rl *rateLimiter) part(k partKey) *partition {
	return rl.parts.load(k)
}

// len returns the number of partitions held.
func (rl *rateLimiter) len() int {
	return rl.parts.len()
}

// each calls fn for every partition; rl.mu is held.
func (rl *rateLimiter) each(fn func(*partition)) {
	for p := rl.lru.head; p != nil; p = p.next {
		fn(p)
	}
}

// gate returns the time before which no attempt may be sent: the end of a
// pause, or, when the announced remaining quota is used up by the attempts
// in flight, the reset (for a quota refilled continuously, the time one
// more request is back). byQuota tells the latter, which a response may end
// early; pause is the end of the pause, p's or its store's (zero for
// none). p.mu is held, and released if the store panics.
func (p *partition) gate(now time.Time) (until time.Time, byQuota bool, pause time.Time) {
	until = p.pauseUntil
	if p.quota != nil {
		returned := false
		defer p.unlockIfPanicking(&returned)
		until = p.sharedPause(until)
		returned = true
	}
	pause = until
	if p.quotaSpent(now) {
		back := p.reset
		if p.refillUnit > 0 {
			if t := p.refillFrom.Add(p.refillUnit * time.Duration(p.inflight-p.remaining+1)); t.Before(back) {
				back = t
			}
		}
		if back.After(until) {
			return back, true, pause
		}
	}
	return until, false, pause
}

// quotaSpent reports whether the announced remaining quota, with what was
// refilled of it since, is used up by the attempts in flight. p.mu is held.
func (p *partition) quotaSpent(now time.Time) bool {
	if !p.reset.After(now) {
		return false
	}
	left := p.remaining
	if p.refillUnit > 0 {
		left += int(min(now.Sub(p.refillFrom)/p.refillUnit, time.Duration(p.inflight+1)))
	}
	return left <= p.inflight
}

// reopen wakes the attempts waiting for the quota when it is no longer spent:
// a response announced a new window, or an attempt in flight ended. p.mu is
// held.
func (p *partition) reopen(now time.Time) {
	if p.reopened != nil && !p.quotaSpent(now) {
		close(p.reopened)
		p.reopened = nil
	}
}

// end ends an attempt's flight without a response to learn from.
func (p *partition) end() {
	p.mu.Lock()
	p.inflight--
	p.reopen(time.Now())
	p.mu.Unlock()
}

// acquire waits for p's turn and counts the attempt in flight. It returns
// the partition the attempt is counted in (p, or that of its plain limit
// when p was split while it waited: see splitFor), the time waited, whether
// the attempt holds a token of that partition's pace (which it gives back
// if it is not sent after all: see giveBack), and an error when it refuses
// to wait or the context ends. start is the current time.
//
// budget is when the call's budget (WithMaxElapsed) ends, zero for none: a
// wait past it, or past the context's deadline, is refused at once. maxWait
// is the longest wait the server may set for the call (its
// WithMaxRetryAfter): a longer pause, spent quota or pace is refused at
// once too.
//
// An attempt whose breaker is open past the end of a pause, a spent
// quota's wait, its turn of the pace or its wait for the store's token
// does not wait: it goes on at once to the breaker, which refuses it (see
// skipWait).
//
// hedged says that the attempt is a hedged copy (see WithHedging): it
// never waits for a token of the partition's pace, which it could not
// give back once canceled behind the tokens of other attempts (see
// rate.Reservation.CancelAt), so that each copy canceled while it waited
// would throw one of the host's tokens away. It is refused at once
// instead.
func (rl *rateLimiter) acquire(ctx context.Context, req *http.Request, p *partition, start, budget time.Time, maxWait time.Duration, hedged bool) (*partition, time.Duration, bool, error) {
	token := false            // a token of p.lim is held for the attempt
	paced := false            // a token was taken and waited for
	leased := false           // a token of the shared quota is held (quota.go)
	var spent <-chan struct{} // a PauseChanged channel found closed after a wait
	// gspent is spent's twin for the host's global limit (p.global).
	var gspent <-chan struct{}
	// dry is when the store first had no token for the attempt since the
	// gate last held it (zero for none): its refusals are bounded from
	// then, not from the waits the gate held the attempt before them.
	var dry time.Time
	for first := true; ; first = false {
		var changed, gchanged <-chan struct{} // asked before the pause is read: see QuotaWatcher
		if p.watch != nil {
			if changed = p.watch.PauseChanged(); changed == spent {
				// A store that hands out a channel already closed
				// would wake every wait at once: wait on the timer.
				changed = nil
			}
		}
		if p.quota != nil {
			if g := p.global.Load(); g != nil && g.watch != nil {
				if gchanged = g.watch.PauseChanged(); gchanged == gspent {
					gchanged = nil
				}
			}
		}
		p.mu.Lock()
		now := start
		if !first {
			now = time.Now()
		}
		if until, byQuota, pause := p.gate(now); until.After(now) {
			if byQuota && !pause.After(now) && (until.Sub(now) > maxWait || pastDeadline(ctx, budget, until)) && p.mayProbe(req, now) {
				// The call would be refused: a request of another
				// route goes instead, whose quota may be its own.
				p.probed = p.reset
				p.inflight++
				p.mu.Unlock()
				return p, now.Sub(start), false, nil
			}
			// reopened wakes the wait early: when a response ends a
			// spent quota's window, or when the partition is cleared
			// (Transport.ResetHost); changed, when the fleet's pause
			// may have changed (another member's ResetHost). A pause
			// wakes only to find itself still in force.
			if p.reopened == nil {
				p.reopened = make(chan struct{})
			}
			reopened := p.reopened
			p.mu.Unlock()
			paced, leased, token = false, false, false // the tokens are spent; take new ones after the gate
			dry = time.Time{}
			d := until.Sub(now)
			if rl.skipWait(req, p, d) {
				return p, now.Sub(start), false, nil
			}
			if d > maxWait {
				return p, now.Sub(start), false, rl.refuse(p, d, fmt.Sprintf("longer than the longest wait a server may ask for (%v)", maxWait))
			}
			if s := retryAfterSpread(d, rl.rand); !pastDeadline(ctx, budget, now.Add(d+s)) {
				// The spread is the limiter's own: it never turns a
				// wait that ends before the deadline into a refusal.
				d += s
			}
			if err := rl.wait(ctx, req.Cancel, p, now, d, budget, reopened, changed, gchanged); err != nil {
				return p, time.Since(start), false, err
			}
			if isClosed(changed) {
				spent = changed
			}
			if isClosed(gchanged) {
				gspent = gchanged
			}
			if q := rl.splitFor(req, p); q != p {
				// p's state went to the partitions of its limits while
				// req waited: req waits in its own.
				p, spent, gspent = q, nil, nil
			}
			continue
		}
		if (p.learned || p.quota != nil && p.limit > 0) && now.Sub(p.heard) > MaxBelievedReset {
			// With a store, the quota is the store's to pace: forgotten
			// here, it is not given to the store again (see learnShared).
			rl.unpace(p, now)
		}
		if !paced && p.lim != nil && p.allow(now) {
			paced, token = true, true
		}
		if paced || p.lim == nil {
			if p.quota != nil && !leased && !p.handedOver {
				d, ok, retry := p.take(now, startBy(ctx, budget))
				if (d > 0 || !ok) && rl.openPast(req, max(d, minQuotaRetry)) {
					// The breaker refuses the attempt when the store's
					// wait ends: it goes on to the breaker at once, as
					// from the other waits (see skipWait). A token the
					// store holds for it is spent either way.
					p.inflight++
					p.mu.Unlock()
					return p, now.Sub(start), token, nil
				}
				if ok && d > maxWait {
					// The fleet's pace is the server's: a wait for
					// its token is bounded as the local pace's is.
					// (The token cannot be given back: a store
					// holds it for this attempt.)
					p.mu.Unlock()
					return p, now.Sub(start), false, rl.refuse(p, d, fmt.Sprintf("longer than the longest wait a server may ask for (%v)", maxWait))
				}
				if !ok && dry.IsZero() {
					dry = now
				}
				if !ok && now.Sub(dry)+max(d, minQuotaRetry) > maxWait {
					// No token of the fleet's quota for as long as a
					// server may ask to wait: refused, as a spent
					// quota's wait that long is, not waited to the
					// call's deadline.
					p.mu.Unlock()
					return p, now.Sub(start), false, rl.refuse(p, now.Sub(dry)+max(d, minQuotaRetry), fmt.Sprintf("no token of the shared quota within the longest wait a server may ask for (%v)", maxWait))
				}
				if d > 0 || !ok {
					p.mu.Unlock()
					paced, leased = true, ok // the static token is kept
					if !ok && d <= 0 {
						d = minQuotaRetry
					}
					if err := rl.wait(ctx, req.Cancel, p, now, d, budget, retry, nil, nil); err != nil {
						return p, time.Since(start), false, err
					}
					continue
				}
			}
			p.inflight++
			p.mu.Unlock()
			return p, now.Sub(start), token, nil
		}
		r := p.lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		if hedged {
			r.CancelAt(now) // the last reservation: its token comes back whole
			p.mu.Unlock()
			return p, now.Sub(start), false, rl.refuse(p, d, "a hedged copy does not wait for a token")
		}
		if p.learned && d > maxWait {
			// The pace is the server's: a wait for a token is bounded
			// as a wait it announced is.
			r.CancelAt(now)
			p.mu.Unlock()
			return p, now.Sub(start), false, rl.refuse(p, d, fmt.Sprintf("longer than the longest wait a server may ask for (%v)", maxWait))
		}
		if !r.OK() || pastDeadline(ctx, budget, now.Add(d)) {
			r.CancelAt(now)
			p.mu.Unlock()
			return p, now.Sub(start), false, rl.refuse(p, d, "past the call's deadline")
		}
		p.mu.Unlock()
		if rl.skipWait(req, p, d) {
			r.CancelAt(now)
			return p, now.Sub(start), false, nil
		}
		if err := rl.wait(ctx, req.Cancel, p, now, d, budget, nil, nil, nil); err != nil {
			r.CancelAt(time.Now())
			return p, time.Since(start), false, err
		}
		paced, token = true, true
	}
}

// allow takes a token of p's pace at now, without waiting: one of lim's,
// or else one given back (see giveBack). p.mu is held, and p.lim is not
// nil.
func (p *partition) allow(now time.Time) bool {
	if p.owed == 0 {
		return p.lim.AllowN(now, 1)
	}
	p.capOwed(now)
	if p.lim.AllowN(now, 1) {
		return true
	}
	if p.owed > 0 {
		p.owed--
		return true
	}
	return false
}

// giveBack gives back to p's pace the token of an attempt that a layer
// below the rate limiter refused without sending it (the breaker open, no
// slot of WithMaxInFlight), so that the host's pace is spent on the
// requests it gets, not on those it never saw: refusals during an outage
// would otherwise empty the bucket, and hold the calls that follow to the
// pace's rate though the server's quota is left whole. lim takes a token
// back only from a reservation canceled before its time: p owes it
// instead (see allow).
func (p *partition) giveBack(now time.Time) {
	p.mu.Lock()
	if p.lim != nil {
		p.owed++
		p.capOwed(now)
	}
	p.mu.Unlock()
}

// capOwed bounds the tokens p owes by the room lim has at now for them, so
// that the two never hold more than lim's burst: tokens given back during
// a refill are lost once it fills the bucket, as they would be in it.
// Called at each change of lim's tokens but its refill, it keeps the bound
// at every moment. p.mu is held, and p.lim is not nil.
func (p *partition) capOwed(now time.Time) {
	if room := float64(p.lim.Burst()) - p.lim.TokensAt(now); float64(p.owed) > room {
		p.owed = max(0, int(room))
	}
}

// skipWait reports whether the host's breaker will still be open when a
// wait of d for p ends, and then counts the attempt in flight in p: it goes
// on at once to the breaker, which refuses it, rather than wait for
// nothing (see breakerSet.openFor, the rule a retry's wait follows too).
// p.mu is not held.
func (rl *rateLimiter) skipWait(req *http.Request, p *partition, d time.Duration) bool {
	if !rl.openPast(req, d) {
		return false
	}
	p.mu.Lock()
	p.inflight++
	p.mu.Unlock()
	return true
}

// openPast reports whether the host's breaker will still refuse req once a
// wait of d ends (see breakerSet.openFor); false for no wait.
func (rl *rateLimiter) openPast(req *http.Request, d time.Duration) bool {
	return d > 0 && rl.breakers != nil && rl.breakers.openFor(req, d)
}

// pauseEnd returns when the pause of req's partition ends (the fleet's
// pause too, see quota.go): a time not after clock's when it is not paused,
// zero for a request without a partition.
func (rl *rateLimiter) pauseEnd(req *http.Request, clock *lazyNow) time.Time {
	k, limited := rl.key(req, rl.needsCred())
	if !limited {
		return time.Time{}
	}
	p := rl.lookup(k, false, clock)
	if p == nil {
		return time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sharedPause(p.pauseUntil)
}

// refusesAfter reports whether the pause of req's partition will make
// acquire refuse an attempt that starts after a wait of d: the pause then
// still runs, and ends at or after deadline (the call's, zero for none),
// or more than maxWait after the wait.
func (rl *rateLimiter) refusesAfter(req *http.Request, d time.Duration, deadline time.Time, maxWait time.Duration) bool {
	var clock lazyNow
	end := rl.pauseEnd(req, &clock)
	at := clock.get().Add(d)
	if !end.After(at) {
		return false
	}
	return !deadline.IsZero() && !end.Before(deadline) || end.Sub(at) > maxWait
}

// take takes a token of the store for an attempt at now that must start
// before deadline, zero for none (see QuotaPartition.Take and
// QuotaDeadlineTaker). p.mu is held, and released if the store panics.
func (p *partition) take(now, deadline time.Time) (d time.Duration, ok bool, retry <-chan struct{}) {
	returned := false
	defer p.unlockIfPanicking(&returned)
	if p.taker != nil {
		d, ok, retry = p.taker.TakeBefore(now, deadline)
	} else {
		d, ok, retry = p.quota.Take(now)
	}
	returned = true
	return d, ok, retry
}

// startBy returns the earlier of ctx's deadline and budget (zero for
// none): when an attempt must start at the latest (see pastDeadline); zero
// for neither.
func startBy(ctx context.Context, budget time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok && (budget.IsZero() || dl.Before(budget)) {
		return dl
	}
	return budget
}

// unlockIfPanicking releases p.mu unless *returned: deferred around a call
// into the store with p.mu held, it keeps the partition usable when the
// store panics (the panic goes on to the caller), instead of holding its
// lock forever, which would hang every later attempt to the partition.
func (p *partition) unlockIfPanicking(returned *bool) {
	if !*returned {
		p.mu.Unlock()
	}
}

// wait sleeps d, or until reopened, changed or gchanged is closed, unless
// d passes ctx's deadline or the call's budget. A nil channel is never
// closed. It ends early with an error when ctx is done or cancel, the
// request's deprecated Cancel channel, is closed: the caller gave up.
func (rl *rateLimiter) wait(ctx context.Context, cancel <-chan struct{}, p *partition, now time.Time, d time.Duration, budget time.Time, reopened, changed, gchanged <-chan struct{}) error {
	if pastDeadline(ctx, budget, now.Add(d)) {
		return rl.refuse(p, d, "past the call's deadline")
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("resilient: waiting for the rate limit of %s: %w", p.key, context.Cause(ctx))
	case <-cancel:
		return fmt.Errorf("resilient: waiting for the rate limit of %s: %w", p.key, errRequestCanceled)
	case <-timer.C:
	case <-reopened:
	case <-changed:
	case <-gchanged:
	}
	return nil
}

// isClosed reports whether ch is closed; false for nil.
func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// pastDeadline reports whether t is at or after ctx's deadline or budget
// (zero for none): an attempt that would start then has no time left.
func pastDeadline(ctx context.Context, budget, t time.Time) bool {
	if dl, ok := ctx.Deadline(); ok && !t.Before(dl) {
		return true
	}
	return !budget.IsZero() && !t.Before(budget)
}

func (rl *rateLimiter) refuse(p *partition, d time.Duration, why string) error {
	if d == rate.InfDuration {
		return fmt.Errorf("%w: %s: would wait forever", ErrRateLimited, p.key)
	}
	return fmt.Errorf("%w: %s: would wait %v, %s", ErrRateLimited, p.key, d, why)
}

// rateLimitMiddleware returns the per-partition rate limiter of the chain,
// or nil when it is turned off.
func (t *Transport) rateLimitMiddleware() Middleware {
	if t.cfg.noRateLimit {
		return nil
	}
	rl := newRateLimiter(&t.cfg)
	t.rl = rl // for ResetHost
	return func(next http.RoundTripper) http.RoundTripper {
		return &rateLimitTransport{next: hopTo(next), rl: rl}
	}
}

// rateLimitTransport is the rate limiter of one chain.
type rateLimitTransport struct {
	next hop
	rl   *rateLimiter
}

func (m *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return m.roundTripAttempt(req, nil)
}

func (m *rateLimitTransport) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	rl := m.rl
	cred := rl.needsCred()
	k, limited := rl.key(req, cred)
	if !limited {
		resp, err := m.next.roundTrip(req, st)
		if resp != nil && st != nil && st.class == Throttled && st.classified {
			// Exempt from the limiter, not from the wait for the
			// quota's reset (see WithoutRateLimit).
			waitForAnnouncedReset(st, resp, rl.parsers, time.Now())
		}
		return resp, err
	}
	credLater := !cred && rl.keyFn == nil // a custom key has no credential added
	ctx := req.Context()
	var clock lazyNow
	if st != nil {
		clock.t = st.start // the retry loop's reading, when it has one
	}
	p := rl.lookup(k, rl.always(), &clock)
	counted := false
	token := false // the attempt holds a token of p's pace
	if p != nil {
		var budget time.Time
		maxWait := rl.maxWait
		if st != nil {
			budget = st.deadline
			if st.callCfg != nil {
				maxWait = st.callCfg.maxRetryAfter // the call's (WithCallOptions)
			}
		}
		q, waited, tok, err := rl.acquire(ctx, req, p, clock.get(), budget, maxWait, st != nil && st.hedge > 0)
		if q != p {
			k, p = q.key, q // the host's limits were split while it waited
		}
		if st != nil {
			st.localWait = waited
			if waited > 0 && !st.start.IsZero() {
				st.start = st.start.Add(waited) // the layers below start later
			}
		}
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		counted, token = true, tok
		// The attempt is in flight until learn or end says otherwise; a
		// panic below (the base RoundTripper, a Classifier) must not
		// keep it counted, or the partition's quota gate would stay
		// shut.
		defer func() {
			if counted {
				p.end()
			}
		}()
	}
	resp, err := m.next.roundTrip(req, st)
	if err != nil || resp == nil {
		if token && refusedLocally(err) {
			p.giveBack(time.Now()) // never sent: its token is the next attempt's
		}
		if st != nil && st.cut != nil {
			// A success whose body was cut (WithBufferedResponse): its
			// headers still say what the server counted.
			m.learn(k, credLater, req, p, &counted, st, st.cut)
		}
		return resp, err // the deferred end ends the flight
	}
	if rl.parsers != nil || rl.quota != nil {
		m.learnClosing(k, credLater, req, p, &counted, st, resp)
		return resp, nil
	}
	m.learn(k, credLater, req, p, &counted, st, resp) // ends the flight, and clears counted when it does
	return resp, nil
}

// learnClosing is learn for a rate limiter that runs the caller's code on a
// response (a WithRateLimitParser function, a QuotaStore): when that code
// panics, the panic takes resp from the caller, and its body is closed on
// the way out (see closeOnPanic).
func (m *rateLimitTransport) learnClosing(k partKey, noCred bool, req *http.Request, p *partition, counted *bool, st *attemptState, resp *http.Response) {
	done := false
	defer closeOnPanic(resp, &done)
	m.learn(k, noCred, req, p, counted, st, resp)
	done = true
}

// endFlight ends the attempt's flight in p when *counted, and clears
// *counted.
func endFlight(p *partition, counted *bool) {
	if *counted {
		*counted = false
		p.end()
	}
}

// learn reads the rate-limit values of resp, records them in the attempt's
// state and updates the partition, and ends the attempt's flight when
// *counted, clearing *counted as it does: a store that panics after the
// flight ended (in Learn or Pause) leaves the caller's deferred end with
// nothing to end again. Without rate-limit headers, Retry-After or a partition, it does
// nothing more than look the headers up, when the Transport's headerWatch
// has it read them at all. The attempt's state gets what the
// server announced (so that the retry loop returns a response whose wait is
// too long); the partition learns only what MaxBelievedReset allows.
//
// k lacks its credential's fingerprint when noCred is set: it is taken from
// req once the response turns out to announce something.
func (m *rateLimitTransport) learn(k partKey, noCred bool, req *http.Request, p *partition, counted *bool, st *attemptState, resp *http.Response) {
	var now lazyNow
	hdr, read := m.rl.headers.read(resp, &now, m.rl.parsers)
	cls := statusClass(resp.StatusCode)
	if st != nil && st.classified {
		cls = st.class
	}
	if !read && cls != Throttled {
		// A success of a quiet Transport, unread: the happy path.
		endFlight(p, counted)
		return
	}
	r := rlResponse{hdr: hdr, status: resp.StatusCode, throttled: cls == Throttled}
	if r.throttled || r.status == http.StatusServiceUnavailable {
		if st != nil && st.classified {
			r.retryAfter, r.hasRA = st.retryAfter, st.hasRetryAfter
		} else {
			r.retryAfter, r.hasRA = retryAfterHeader(resp.Header, now.get)
		}
	}
	found := r.hdr.found()
	if !found && !r.hasRA {
		endFlight(p, counted)
		return // the happy path: nothing announced
	}
	t := now.get()
	if st != nil {
		st.rate = r.hdr.info
		if r.hasRA {
			st.rate.Reset = t.Add(r.retryAfter) // Retry-After wins
		}
		waitForReset(st, r.throttled, r.hdr.info, t) // the loop waits the same pause as the partition
	}
	if noCred {
		// No partition could be found when the attempt began: its key
		// has neither its credential nor its canonical name yet.
		k = m.rl.canonical(k)
		k.cred = credentialOf(req)
		if k.cred != 0 && p != nil {
			// The attempt was counted in a partition found without its
			// credential (made meanwhile): it learns in its own.
			endFlight(p, counted)
			p = nil
		}
	}
	// The attempt reports what the server said; the partition learns
	// only what is believable.
	plain := 0
	if r.hdr.plain && !namesQuota(resp.Header) {
		plain = r.hdr.info.Limit
		r.method, r.path = bucketMethod(req.Method), routeTemplate(req.URL.Path)
	}
	nk, split := m.rl.resources.learn(k, resp, plain, r.throttled)
	if split > 0 {
		// The host counts each endpoint apart: what its partition of
		// the class learned was the first limit's, whose routes now
		// have a partition of their own.
		m.rl.splitPlain(partKey{scheme: k.scheme, host: k.host, write: k.write, cred: k.cred}, split, t)
	}
	if nk != k {
		// The response names a quota of its own: it learns, not the
		// partition the attempt was counted in.
		endFlight(p, counted)
		k, p = nk, nil
	}
	if !r.believe(t) && p == nil {
		return
	}
	if p == nil {
		p = m.rl.lookup(k, true, &now)
	}
	if k.resource != "" && m.rl.quota != nil && p.global.Load() == nil {
		// A quota of its own: the fleet's pause of the host's global
		// limit must hold it, which the members that got a global 429
		// may never have made (see fleetGlobal).
		m.rl.fleetGlobal(k)
	}
	m.rl.update(p, t, &r, counted)
	if r.throttled && r.hasRA && globalScope(resp.Header) {
		// Discord's global limit: every route of the credential waits.
		m.rl.pauseHost(k, t.Add(r.retryAfter), t)
	}
}
