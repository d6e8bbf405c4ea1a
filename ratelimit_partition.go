package resilient

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
	"golang.org/x/time/rate"
)

// This file holds the rate limiter's partitions: their keys, and the bounded
// table that holds them, least recently used last.

// Bounds of the rate limiter's partition table: at most maxRatePartitions
// partitions are kept, the least recently used one is evicted to make room
// (one that holds a wait in force after the others: see evictTail),
// and a partition unused for ratePartitionIdle whose announced reset and
// pause have passed is dropped.
const (
	maxRatePartitions = 4096
	ratePartitionIdle = 10 * time.Minute
)

// partKey names a partition. The default key is the scheme, the host and
// the class; a key from WithRateLimitKey is held in host with an empty
// scheme. It is a comparable struct so that the default key needs no string
// built per request.
type partKey struct {
	scheme, host string
	write        bool
	// custom says that host is a custom key (WithRateLimitKey), shown as
	// it is, not the host of a URL without a scheme, which is a URL's
	// host (see String).
	custom   bool
	resource string // the quota the server names (see ratelimit_resource.go); "" for none
	cred     uint64 // the request's credential, as credentialOf fingerprints it; 0 for none
}

// String returns e.g. "https://api.example.com reads", followed by the tag
// of its credential when it has one (credentialTag, a one-way digest of its
// fingerprint): "https://api.example.com reads, credential 9c1e0f2a7b3d4e5f".
// A credential in a parameter after the host is REDACTED
// ("api.example.com;jsessionid=REDACTED", see redact.HostParams): a
// QuotaStore keeps the name, and errors quote it. A custom key is the key
// itself. The host of a URL without a scheme ("//host/path", which a
// custom base may serve), its user information REDACTED already (see
// rateLimiter.key), is named as a URL's host is, without the scheme
// ("api.example.com reads, credential 9c1e0f2a7b3d4e5f"): named by its
// host alone, the partitions of its classes and credentials would share
// one state in a QuotaStore, one tenant's pause holding another's calls.
// It is not called on a call's success path, but where a partition is
// made.
func (k partKey) String() string {
	if k.scheme == "" && k.custom {
		return k.host
	}
	k.host = redact.HostParams(k.host)
	sep := ""
	if k.scheme != "" {
		sep = "://"
	}
	var s string
	switch {
	case k.resource != "":
		s = k.scheme + sep + k.host + " " + k.resource
	case k.write:
		s = k.scheme + sep + k.host + " writes"
	default:
		s = k.scheme + sep + k.host + " reads"
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

// partition is the state of one host, class and credential (or one key).
type partition struct {
	key  partKey
	node tableNode[partKey, partition] // holds it in the table

	// used is set by the attempts that find the partition, and cleared by
	// the passes that record their time in lastUsed.
	used atomic.Bool

	// Guarded by rateLimiter.mu.
	listNode[partition]
	lastUsed time.Time // its creation, or the last pass that found it used

	// removed is set, under rateLimiter.mu and mu, once p is no longer in
	// the table (evicted, dropped idle, cleared): an attempt counted in it
	// learns its answer in the partition the table holds (see learn).
	removed atomic.Bool

	mu        sync.Mutex
	lim       *rate.Limiter // nil: no pacing
	learned   bool          // lim paces by the server's announced quota
	paceRate  rate.Limit    // the rate and burst last given to lim by pace
	paceBurst int
	// owed counts the tokens of lim that attempts took and gave back
	// unused (see giveBack), which lim itself cannot take back: the next
	// attempts that find lim empty take them instead of waiting. With
	// lim's tokens, they never pass lim's burst, nor leave lim's turns
	// reserved for attempts that wait without their token (see capOwed).
	// A part of one is not kept.
	owed int
	// freed holds, in order, the times of turns of lim that attempts
	// reserved and gave back before they came, which lim could not take
	// back but still counts spent (see cancelTurn): the next attempts that
	// must wait take them, each one attempt. They are all of lim's current
	// rate (see gen).
	freed []time.Time
	// gen counts the changes of lim's rate (see newRate): a turn taken at
	// an older rate is spent, not given back (see cancelTurn). A change of
	// the burst alone leaves them be: the turns lim reserved come one
	// rate's interval apart, whatever its burst.
	gen uint64
	announced
	inflight int           // attempts sent and not yet answered
	reopened chan struct{} // closed when the quota gate may have opened; nil when nobody waits
	forgot   chan struct{} // closed when Transport.ResetHost forgets what p learned (see rateLimiter.forget); nil when nobody waits for it
	rose     chan struct{} // closed when the rate of p's pace rises (see setRate), or its bucket is filled by a new window (see pace); nil when nobody waits for it
	answer   chan struct{} // closed when an attempt's flight in p ends (see answerHeard); nil when nobody waits for it
	paused   chan struct{} // closed when p's pause is raised (see raisePause); nil when nobody waits for it
	gone     chan struct{} // closed when p is removed from the table (see resetWatch); nil when nobody waits for it
	// resets is, once p is removed, the first signal of a
	// Transport.ResetHost made since that no waiter of p has looked at
	// (see resetWatch); nil before.
	resets *resetSignal
	// waiters counts the attempts in acquire that waited in p, or asked
	// its store for a token once p was removed (see waitMark): a removed
	// partition with waiters is held in rateLimiter.orphans.
	waiters atomic.Int32
	sent    time.Time // when the last attempt of p was let go (see scouting)
	rise    rateRise  // the last rise of the rate of p's pace that woke attempts (see retime)
	// clock is the latest time p's state was changed at (see at): lim
	// must never be given an earlier one.
	clock time.Time

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
	// storePaced is when the store last held a token for an attempt of p
	// to send later (zero for never): it paces a quota the fleet learned,
	// which p may not have heard announced itself (another member did).
	// A hedged copy takes no token of it then (see storePaces). Guarded
	// by mu.
	storePaced time.Time
}

func (p *partition) links() *listNode[partition] { return &p.listNode }

// at returns the time at which a change to p's state read at now is made:
// now, or the latest time one was made at (clock) when now is earlier. A
// time is read before p.mu is taken (an attempt's start, a response's
// arrival), and under contention another attempt may take the lock, read
// later, first: lim, given the earlier time after it, counts the time
// between the two as refilled again (rate.Limiter moves its clock back to
// any time it is given), so that 64 callers of a pace of 200 a second sent
// 10% more. A time earlier than clock by more than maxClockLag is no such
// read but another clock's: a testing/synctest bubble's, whose fake times
// (from 2000, without a monotonic reading) follow those p was used at in
// real time. It is taken as it is, as the Transport's callClock takes it:
// held to clock, every time of the bubble was decades ahead of its
// deadlines, and p's pace frozen. p.mu is held.
func (p *partition) at(now time.Time) time.Time {
	if now.Before(p.clock) && p.clock.Sub(now) <= maxClockLag {
		return p.clock
	}
	p.clock = now
	return now
}

// maxClockLag bounds how much earlier than the latest time a partition's
// state was changed at a time read before its lock is taken may be (see
// partition.at): far more than an attempt takes to reach the lock, a
// WithRateLimitKey that looks its key up included.
const maxClockLag = time.Hour

// storePaces reports whether p's store paced an attempt of p (see
// storePaced) within MaxBelievedReset of now: as a quota no response
// announced for that long, a pace the store no longer shows paces p no
// more (see unpace). p.mu is held.
func (p *partition) storePaces(now time.Time) bool {
	return !p.storePaced.IsZero() && now.Sub(p.storePaced) <= MaxBelievedReset
}

// announced is what a partition learned from the server's answers.
type announced struct {
	limit        int           // announced limit; 0 when unknown
	window       time.Duration // announced (policy) or estimated window; 0 when unknown
	policyWindow bool          // window was announced, not estimated
	windowSeen   time.Time     // when the window was last announced, or an estimate of it seen (see update)
	heard        time.Time     // when a response last announced a rate-limit value (see unpace)
	remaining    int           // announced remaining; valid while reset is ahead
	counted      time.Time     // when the response that set remaining arrived
	reset        time.Time     // when remaining resets; zero when unknown
	// heardSent is when the latest request whose answer announced a
	// rate-limit value was sent (that answer's arrival when the send
	// time is not known): an answer tells of the windows that began
	// before its request was sent, not of one that began while it was
	// on its way (see nextScout).
	heardSent time.Time
	// A quota refilled continuously (OpenAI's, Anthropic's: their reset
	// is when it is full again) gets one request back every refillUnit
	// from refillFrom, the time remaining was announced; 0 for a quota
	// whose window resets at once.
	refillUnit time.Duration
	refillFrom time.Time
	// drained says that remaining is the server's count of none left
	// (a Remaining 0), not the end of a Retry-After's pause: the window
	// announced after it fills the pace's bucket (see pace).
	drained bool
	// countReset is the reset of the window of the server's last count:
	// reset's, unless a Retry-After's pause set reset since (that pause
	// says nothing of the count, whose window may be over before the
	// pause is: see overSince); zero when unknown.
	countReset time.Time
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
		k.custom = true
		return k, k.host != ""
	}
	k.scheme, k.host = urlKey(req.URL.Scheme, stateHost(req))
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
		rl.evictTail(now, k)
	}
	k = k.clone()
	p = rl.newPartition(k)
	p.lastUsed = now
	rl.parts.insert(k, h, p, &p.node)
	rl.pushFront(p)
	return p
}

// dropIdle removes at most two idle partitions from the back of the list,
// never k's, giving the used ones met on the way their second chance, and
// moving to the front the idle ones that hold something still in force
// (see evictable); rl.mu is held.
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
		case now.Sub(p.lastUsed) < rl.idle:
			return // the others were used since
		default:
			// Idle, and held by its reset, its pause or an attempt in
			// flight: looked at again once idle anew. Left at the back,
			// it made every lookup sweep, under rl.mu, until its reset
			// (up to MaxBelievedReset), and kept the idle ones behind it.
			p.lastUsed = now
			rl.unlink(p)
			rl.pushFront(p)
		}
	}
}

// evictTail makes room for k: it removes the least recently used
// partition that holds no wait in force (see holdsWait), after giving the
// used ones at the back their second chance and moving to the front those
// that hold one (at most one turn of the list, and maxHeldSkips of the
// latter): the partitions of a host or a credential made anew for each
// call (a token minted per request, a server that names a fresh bucket on
// every answer) do not evict the pause of another. When every one it
// looked at holds a wait, the first of those of the scheme and host that
// holds the most of them goes (a server that names a fresh bucket on every
// answer, each spent, makes room from its own flood, whichever host
// inserts), of k's on a tie: a host that inserts its second partition
// keeps the pause of its first while another host floods the table. When
// no host holds two of them, the back one goes, whatever it holds, unless
// it holds a wait of k's host (a host's only pause is not the price of its
// next partition): the one before it goes then; rl.mu is held.
func (rl *rateLimiter) evictTail(now time.Time, k partKey) {
	var held [maxHeldSkips]*partition
	n := 0
	for turn := rl.parts.len(); turn > 0 && n < maxHeldSkips; turn-- {
		p := rl.lru.tail
		switch {
		case p.used.Load():
			p.used.Store(false)
			p.lastUsed = now
		case p.holdsWait(now):
			held[n] = p
			n++
		default:
			rl.remove(p)
			return
		}
		rl.unlink(p)
		rl.pushFront(p)
	}
	var victim *partition
	most, mostOwn := 0, false
	for _, p := range held[:n] {
		count := 0
		for _, q := range held[:n] {
			if sameOrigin(q.key, p.key) {
				count++
			}
		}
		own := sameOrigin(p.key, k)
		if count > most || count == most && own && !mostOwn {
			victim, most, mostOwn = p, count, own
		}
	}
	if most > 1 {
		rl.remove(victim)
		return
	}
	// The back one goes, unless it holds a wait of k's host: the one
	// before it goes then. (The held ones looked at went to the front,
	// and the back one may be k's host's only pause, which lay just past
	// them.)
	victim = rl.lru.tail
	for i := 0; i < maxHeldSkips && victim.prev != nil && sameOrigin(victim.key, k) && victim.holdsWait(now); i++ {
		victim = victim.prev
	}
	rl.remove(victim)
}

// sameOrigin reports whether a and b are partitions of one scheme and
// host.
func sameOrigin(a, b partKey) bool { return a.scheme == b.scheme && a.host == b.host }

// sameHost reports whether a and b are partitions of one scheme, host and
// credential: those a pause of the host stops (see rateLimiter.pauseHost).
func sameHost(a, b partKey) bool { return sameOrigin(a, b) && a.cred == b.cred }

// maxHeldSkips bounds the partitions that hold a wait in force one
// eviction moves to the front (see evictTail), so that a table full of
// them costs an insert a few steps, not a turn of the list.
const maxHeldSkips = 16

// holdsWait reports whether p holds its attempts at now: a pause in force
// or a spent quota whose reset is ahead.
func (p *partition) holdsWait(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pauseUntil.After(now) || p.quotaSpent(now)
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

// remove removes p from the table; rl.mu is held. The attempts still
// waiting in p wake, to listen from then on for the ResetHost calls that
// no longer reach it (see resetWatch).
func (rl *rateLimiter) remove(p *partition) {
	rl.unlink(p)
	p.mu.Lock()
	if rl.resets != nil {
		p.resets = rl.resets.Load()
	}
	p.removed.Store(true)
	if p.waiters.Load() != 0 {
		rl.orphans.add(p) // for ResetHost (see orphans)
	}
	if p.gone != nil {
		close(p.gone)
		p.gone = nil
	}
	p.mu.Unlock()
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
