package resilient

import "time"

// This file holds the rate limiter's hook for a fleet: the state of a
// partition shared with other Transports, in this process or in others
// (package redisquota keeps it in Redis). The rate limiter calls it at four
// points: when it creates a partition (ratelimit_partition.go), when it
// reads the partition's pause and when it takes a token for an attempt
// (ratelimit_wait.go), and when it learns from a response
// (ratelimit_learn.go).

// A QuotaStore shares the state of the rate limiter's partitions (see
// WithRateLimit and WithRateLimitKey) between the members of a fleet: the
// Transports of several processes, or of one, that spend the same quota —
// one API key at one vendor. Each partition's shared state is a
// QuotaPartition. Without a store (the default) a Transport keeps all of
// it in memory, for itself alone.
//
// A QuotaStore must be safe for concurrent use. Partition is called once
// when a Transport creates a partition, with the partition's name (e.g.
// "https://api.example.com reads", or the name WithRateLimitKey gave),
// while the Transport holds the lock of its partition table: it must return
// at once, without I/O, and never nil. A store loads what it shares in the
// background and answers from what it holds until then. The Transport
// keeps the QuotaPartition for the partition's life and may ask again after
// evicting the partition; a store should return the same state for the
// same name while it holds it. A Transport also asks, once, for the state
// of the global limit of each host and credential that announced a quota
// of its own (a resource, a route's bucket: "https://discord.com Global
// limit", followed by the credential's tag), which every member's
// partitions of that host and credential read with their own: a 429 of
// Discord's global limit pauses it, so that the routes the member that got
// it never called wait too. No request goes to it: only its PauseUntil,
// Pause and the optional interfaces are called.
//
// The Transport may look for further optional interfaces on a store or on
// its partitions by type assertion, as net/http does with http.Flusher
// (BudgetStore, to share the retry budgets of hosts; QuotaResetter, on a
// partition, for Transport.ResetHost to clear the fleet's pause and quota;
// QuotaWatcher, on a partition, to wake the attempts waiting out a pause
// that another member cleared; QuotaDeadlineTaker, on a partition, to tell
// it by when an attempt must start):
// a store need not implement them, and the Transport behaves as without
// them. A partition that does not implement QuotaResetter keeps what the
// fleet shares through Transport.ResetHost: a pause it holds stays in force
// for every member, the one that called ResetHost included, until it ends.
type QuotaStore interface {
	Partition(name string) QuotaPartition
}

// A QuotaPartition is one partition's state shared by every member of a
// fleet: the tokens of the quota, the quota the server announced, and the
// pause after a 429.
//
// Its methods are called concurrently, on the callers' goroutines, some of
// them while the Transport holds the partition's lock: none may block, wait
// for I/O or call back into the Transport. A request whose token is already
// held by the member must cost no I/O and no lock shared with the other
// requests (an atomic operation at most); a store does its I/O in the
// background, in a bounded number of goroutines (not one per request), and
// answers from what it holds.
//
// A store's failure (its backend slow or down) is never an error of the
// Transport: a partition whose backend does not answer falls back, within a
// bound the store documents, to pacing locally by what it last knew (its
// share of the last known quota), and resumes sharing when the backend
// answers again.
type QuotaPartition interface {
	// Take takes a token for one attempt at now. With ok, the attempt
	// may be sent after delay (zero: at once), the token being held for
	// it; a partition that knows no quota yet returns ok with a zero
	// delay, and the attempt goes unpaced, as without a store. Without
	// ok, no token could be had: the caller calls Take again after delay,
	// which must then be positive, or as soon as retry (when not nil) is
	// closed, whichever comes first (a retry already closed when Take
	// returns, as a delay that is not positive, is taken as a
	// millisecond; with ok, retry is not looked at: the attempt waits for
	// its delay). Take's refusals are waits the server's limits set:
	// with those before and after them (pauses, spent quotas, tokens held
	// for later), they hold the attempt no longer in all than a server may
	// ask to wait (WithMaxRetryAfter), counted from the first of them;
	// the attempt is then refused with ErrRateLimited instead. Once it
	// waited out a pause or a spent quota, Take's refusals may go on past
	// that bound until a tenth of WithMaxRetryAfter after that wait ended
	// (the fleet's members all take a token as a window opens).
	Take(now time.Time) (delay time.Duration, ok bool, retry <-chan struct{})

	// PauseUntil returns the time before which no attempt may be sent to
	// the partition, by any member; the zero time when no pause is known.
	// It is called before every attempt of a partition that exists, and
	// must be as cheap as an atomic load.
	PauseUntil() time.Time

	// Pause pauses the partition until until, for every member: a
	// response said so (a 429 with Retry-After or a reset). A later pause
	// wins over an earlier one; an earlier one changes nothing. The
	// calling member must see it at once; the others as soon as the store
	// can tell them.
	//
	// A 429 of a host's global limit (Discord's) pauses the host's
	// partitions, then its global limit. A store that tells the fleet its
	// pauses in the order they were made lets a member that sees the
	// global pause, and calls ResetHost, find the host's other pauses in
	// the store already, and clear them with it (see QuotaResetter): not
	// one written after its reset, which the reset keeps.
	Pause(until time.Time)

	// Learn records what a response announced of the partition's quota:
	// info.Limit requests per window (both known: Learn is called only
	// then), and, when announced, info.Remaining (else -1) until
	// info.Reset (else zero). It is called with every response that
	// announces rate-limit values with the quota's window or a reset (one
	// without either confirms no window), so a store should compare, and
	// share only what changed.
	Learn(info RateLimitInfo, window time.Duration)
}

// A QuotaResetter is a QuotaPartition that can forget, for every member of
// the fleet, what the servers said of the partition: Transport.ResetHost
// calls Reset on the shared state of each partition it clears, when that
// state implements QuotaResetter.
type QuotaResetter interface {
	// Reset clears the partition's pause and the quota learned for it
	// (with the tokens paced by that quota), for every member, as
	// ResetHost does for one Transport: until a response announces a
	// quota again, the partition's attempts are not paced by the store.
	// It clears what the store held when Reset was called, not a pause
	// or a quota another member records later. The calling member must
	// see it at once, and never the state it cleared again (a pause the
	// store was writing when Reset was called included); the others as
	// soon as the store can tell them. Like the other methods of a
	// QuotaPartition, it is called while the Transport holds the
	// partition's lock (but for a partition the Transport's table evicted
	// while attempts wait in it, which may be in the store's Take then),
	// and it must not block or wait for I/O.
	//
	// ResetHost calls Reset on the host's partitions one after the other,
	// those of the host's global limit (Discord's) last. A store that
	// tells the fleet its resets in the order they were made lets a
	// member whose wait for the global pause a reset ended find the
	// host's other partitions cleared too, not paused still for a
	// moment by a reset not told yet.
	Reset()
}

// A QuotaWatcher is a QuotaPartition that tells when its pause may have
// changed, so that the attempts of a Transport waiting out the fleet's pause
// look again at once instead of waiting it out: after another member's
// Transport.ResetHost cleared it (QuotaResetter), the waiting attempts of
// every member go, not only their next ones.
type QuotaWatcher interface {
	// PauseChanged returns a channel that is closed when the pause may
	// have changed since PauseChanged was called: cleared by a reset,
	// raised, or told by another member. The Transport asks for it
	// before it reads PauseUntil, so that no change falls between the
	// two; a channel closed for another reason costs a second look at
	// PauseUntil, nothing more. Once closed, a channel must not be
	// returned again: a Transport that waited once and is then handed a
	// channel already closed (that one, or a new one) asks once more (a
	// channel may close as it is handed out, at a change that comes at
	// that moment), and, handed one closed again, waits on its timer
	// instead. It is called before every look at the pause (twice when
	// it hands out a closed channel), and must be as cheap as an atomic
	// load.
	PauseChanged() <-chan struct{}
}

// A QuotaDeadlineTaker is a QuotaPartition told by when the attempt it
// takes a token for must start: the earliest of the request's context's
// deadline, what remains of the call's budget (WithMaxElapsed), the end
// of the longest wait for a token the Transport gives it (the call's
// WithMaxRetryAfter from now), and, for an attempt that the server's
// limits (a pause, a spent quota, a turn of the pace, the store's
// refusals) held already, the end of the bound of those waits in all
// (WithMaxRetryAfter from when they first held it, the wait for the
// answer of the attempt sent first after a spent quota's reset
// included; see QuotaPartition.Take and WithMaxRetryAfter). The Transport
// calls TakeBefore instead of Take when the partition implements it.
//
// A store whose partition holds no token because its backend has not
// answered yet, not because the fleet's quota is spent, holds an attempt
// back for the backend, up to the bound the store documents, after which
// it paces the partition locally. An attempt whose deadline comes before
// that bound would be refused (ErrRateLimited, "past the call's deadline"
// or "no token of the shared quota within the longest wait") for a wait
// that is the backend's, not the quota's: a call a plain client would have
// sent (a call made WithMaxRetryAfter(0), which waits for no server, to a
// partition whose state the store is still reading). TakeBefore tells the
// store so, and the store paces that attempt locally at once instead.
// TakeBefore also lets a store leave to the next attempt a token that
// conforms only at or after the deadline (not ok, with its delay): the
// Transport refuses the attempt without sending it, and a token it
// reserved could not be given back (redisquota's leases and local limiter
// leave it so). A delay that reaches the end of the bound in all refuses
// the attempt at once (ErrRateLimited), as a token past it does.
type QuotaDeadlineTaker interface {
	// TakeBefore is Take for an attempt that must start before
	// deadline; the zero time for none.
	TakeBefore(now, deadline time.Time) (delay time.Duration, ok bool, retry <-chan struct{})
}

// WithQuotaStore shares the rate limiter's state through s: each partition's
// quota tokens, the quota learned from the servers' rate-limit headers, and
// the pause after a 429 are held by s for every Transport that uses it (see
// package redisquota for a fleet of processes sharing them through Redis).
// Pacing by a learned quota then comes from s's tokens; a static limit
// (WithRateLimit) and the wait for an announced reset stay per Transport.
// Every attempt of a request the limiter paces (see WithRateLimitKey) goes
// through its partition, which the first one makes, asking s for its
// state, so that the fleet's pause after a 429 that another member got holds
// a Transport to which no server has announced anything (most APIs send a
// Retry-After on their 429s alone): with s, an attempt takes the
// partition's lock and a Take of s, which a Transport without a store takes
// only once a server has announced a quota. An attempt whose host's
// breaker is open (not half-open) when it would take a token takes none:
// the breaker refuses it, and a token of s cannot be given back. A 429 of
// a host's global limit (Discord's X-RateLimit-Global: true) pauses,
// through s, every partition of the host and credential in every member,
// those the member that got it never made included (another route's
// bucket), once the member has learned a quota of the host's own (see
// QuotaStore). A nil s restores the default: everything in memory, per
// Transport; so does an s that holds a nil pointer or func (a variable
// of type *redisquota.Store left unset), whose methods would fail every
// call. WithoutRateLimit turns s off too, for the quota.
//
// When s also implements BudgetStore, the retry budget of each host is
// shared through it too (unless WithoutRetryBudget turns the budget off),
// whether or not the rate limiter is on.
func WithQuotaStore(s QuotaStore) Option {
	if holdsNil(s) {
		s = nil
	}
	return func(c *config) {
		c.quotaStore = s
		perTransport(c, "WithQuotaStore")
	}
}

// quotaPartition returns the shared state of the partition named by k, or
// nil without a store.
func (rl *rateLimiter) quotaPartition(k partKey) QuotaPartition {
	if rl.quota == nil {
		return nil
	}
	return rl.quota.Partition(k.String())
}

// sharedPause returns the later of until and the pause p's store holds,
// p's own or that of its host's global limit (see fleetGlobal). p.mu is
// held.
func (p *partition) sharedPause(until time.Time) time.Time {
	if p.quota != nil {
		if q := p.quota.PauseUntil(); q.After(until) {
			until = q
		}
		if g := p.global.Load(); g != nil {
			if q := g.q.PauseUntil(); q.After(until) {
				until = q
			}
		}
	}
	return until
}

// minQuotaRetry bounds how often a Take that got no token is repeated, if
// a store returns a delay that is not positive.
const minQuotaRetry = time.Millisecond

// learnShared gives what p learned from a response to its store: the quota
// (which the store paces, instead of p's own limiter), with what the
// response announced of it when it announced a rate-limit value with the
// quota's window or a reset (announced; a Retry-After alone announces
// none, nor does a count without a reset, which confirms no window: see
// rateLimiter.update), and a pause (zero for none). It reports whether p
// has a store. p.mu is held.
//
// The store hears of the quota only from responses that so announce one:
// it knows from its Learns how long ago a response last did, and stops
// pacing the fleet by a quota no member's responses have announced for
// MaxBelievedReset, as the limiter forgets it (see rateLimiter.unpace),
// and forgets a window no reset confirms (see rateLimiter.update).
func (p *partition) learnShared(info *RateLimitInfo, pause time.Time, announced bool) bool {
	if p.quota == nil {
		return false
	}
	if announced && p.limit > 0 && p.window > 0 {
		p.quota.Learn(RateLimitInfo{Limit: p.limit, Remaining: info.Remaining, Reset: info.Reset}, p.window)
	}
	if !pause.IsZero() {
		p.quota.Pause(pause)
	}
	return true
}
