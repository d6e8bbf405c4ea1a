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
	// slots says that the limit of attempts in flight (WithMaxInFlight)
	// is below the rate limiter in the chain (see attemptState.keepsSlot).
	slots bool
	// resets is the Transport's signal of its ResetHost calls, nil for
	// none: the waits of a partition removed from the table listen to it,
	// as ResetHost reaches only the partitions the table holds (see
	// resetWatch).
	resets *atomic.Pointer[resetSignal]
	// orphans holds the partitions removed from the table that attempts
	// still wait in, whose store's partitions ResetHost resets.
	orphans orphans
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

// acquire waits for p's turn and counts the attempt in flight. It returns
// the partition the attempt is counted in (p, or that of its plain limit
// when p was split while it waited: see splitFor), the time waited, the
// limiter of that partition's pace whose token the attempt holds, nil for
// none (the attempt gives it back if it is not sent after all: see
// giveBack), and an error when it refuses to wait or the context ends.
// start is the current time.
//
// budget is when the attempt must be sent at the latest (see
// attemptState.latestStart: before the call's budget, WithMaxElapsed, and
// the context's deadline end), zero for none: a wait past it, or past the
// context's deadline, is refused at once. maxWait
// is the longest wait the server may set for the call (its
// WithMaxRetryAfter): a longer pause, spent quota or pace is refused at
// once too. The waits for the server's limits that follow one another
// (a QuotaStore's refusals, when it has no token to give, among them)
// are bounded by maxWait in all, with one exception: an attempt that
// waited out a spent quota (or a pause) and whose turn of the pace would
// pass that bound waits for the answer of the attempt of p sent first
// since the reset (the scout), at most until its turn, and not past the
// deadline: a new window that answer announces fills the pace's bucket
// (see pace), and the attempt goes at once; an answer that says the quota
// is still spent refuses it then. The extra wait is the scout's answer
// time, and a tenth of maxWait past the end of the attempt's wait for the
// reset at most (scoutGraceShare):
// a scout that hangs does not hold the others to their deadlines. A
// QuotaStore's token that would pass the bound is waited for within the
// same tenth of maxWait (the store paces the new window,
// and no answer fills its bucket), and the attempt is sent at it only
// once an answer heard since the reset left the gate open: it waits for
// the scout's answer until then, and is refused without one. A
// QuotaStore that has no token to give may refuse it within that tenth
// too, past the bound.
//
// An attempt whose breaker is open past the end of a pause, a spent
// quota's wait, its turn of the pace or its wait for the store's token
// does not wait: it goes on at once to the breaker, which refuses it (see
// skipWait). One waiting for its turn of the pace when its breaker opens,
// past that turn, gives the turn back and goes on to the breaker then.
// One whose breaker is open when it would take a QuotaStore's token goes
// on to it without the token, which could not be given back.
//
// hedged says that the attempt is a hedged copy (see WithHedging): it
// never waits for a token of the partition's pace, which it could not
// give back once canceled behind the tokens of other attempts (see
// rate.Reservation.CancelAt), so that each copy canceled while it waited
// would throw one of the host's tokens away. It is refused at once
// instead. For the same reason, it takes no token of a QuotaStore that
// paces a quota the host announced to the Transport, or that paced an
// attempt of p (see partition.storePaces): a store's token is never given
// back, and each copy that lost would cost the fleet one.
func (rl *rateLimiter) acquire(ctx context.Context, req *http.Request, p *partition, start, budget time.Time, maxWait time.Duration, hedged bool, gated *time.Time) (*partition, time.Duration, *rate.Limiter, error) {
	var mark waitMark
	defer func() {
		if mark.p != nil {
			rl.unmarkWaiter(&mark)
		}
	}()
	return rl.acquireTurn(ctx, req, p, start, budget, maxWait, hedged, gated, &mark)
}

// acquireTurn is acquire; mark is the partition the attempt is counted a
// waiter of (see waitMark), which acquire ends on its way out.
func (rl *rateLimiter) acquireTurn(ctx context.Context, req *http.Request, p *partition, start, budget time.Time, maxWait time.Duration, hedged bool, gated *time.Time, mark *waitMark) (*partition, time.Duration, *rate.Limiter, error) {
	var tok *rate.Limiter // the limiter of p whose token is held for the attempt; nil for none
	paced := false        // a token was taken and waited for
	leased := false       // a token of the shared quota is held (quota.go)
	// *gated is when the server's limits first held the attempt (zero
	// until then): the waits for the pauses, spent quotas and turns of
	// the learned pace (the local one's, or a store's token held for
	// later), and for a store that has no token to give, that follow
	// one another while it waits are bounded by maxWait in all, as one
	// is. (The store's refusals were counted anew after each pause: a
	// store without tokens between short pauses held the attempt to
	// the call's deadline.) It is the attempt's (see
	// attemptState.gated): an attempt sent back here after it passed
	// its slot on for a pause (see afterSlotPaused) waits within what
	// its earlier waits left of maxWait.
	// reopenedAt is when the gate that last held the attempt opened:
	// the reset of the spent quota, or the end of the pause, it waited
	// for (zero for none). An attempt of p sent since then is the scout
	// of the window that began then (see partition.scouting).
	// scoutBy is when the wait for the scout's answer past that bound
	// ends: a tenth of maxWait after the wait for the gate ended (its
	// spread included).
	var reopenedAt, scoutBy time.Time
	// graced says that the store's token the attempt holds comes past
	// the bound of the server's waits, within the wait for the scout's
	// answer (see scoutBy): the attempt is sent at it only on the word
	// of an answer heard since the reset.
	graced := false
	for first := true; ; first = false {
		changed, gchanged := p.pauseWatches(first) // asked before the pause is read
		p.mu.Lock()
		now := start
		if !first {
			now = time.Now()
		}
		now = p.at(now)
		if first {
			// start moved on to the time of an attempt of p that read
			// a later one and took p.mu first (see at): no wait of
			// this attempt's, which the time it returns does not count
			// (Attempt.LocalWait, Report.Waited).
			start = now
		}
		if until, byQuota, pause := p.gate(now); until.After(now) {
			if hedged {
				// A copy waits for no reset: sent then, long after its
				// hedging delay, it would be one more request of the
				// new window, not a hedge.
				p.mu.Unlock()
				return p, now.Sub(start), nil, rl.refuse(p, until.Sub(now), "a hedged copy does not wait for the host's quota or pause")
			}
			if gated.IsZero() {
				*gated = now
			}
			held := now.Sub(*gated) // by the gate already
			if byQuota && !pause.After(now) && (addWaits(held, until.Sub(now)) > maxWait || pastDeadline(ctx, budget, until)) && p.mayProbe(req, now) {
				// The call would be refused: a request of another
				// route goes instead, whose quota may be its own.
				p.probed = p.reset
				p.inflight++
				p.sent = now
				p.mu.Unlock()
				return p, now.Sub(start), nil, nil
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
			reopenedAt = until
			paced, leased, tok = false, false, nil // the tokens are spent; take new ones after the gate
			graced = false
			d := until.Sub(now)
			if rl.skipWait(req, p, d) {
				return p, now.Sub(start), nil, nil
			}
			if addWaits(held, d) > maxWait {
				return p, now.Sub(start), nil, rl.refuseServerWait(p, held, d, maxWait)
			}
			if s := retryAfterSpread(d, rl.rand); !pastDeadline(ctx, budget, now.Add(d).Add(s)) {
				// The spread is the limiter's own: it never turns a
				// wait that ends before the deadline into a refusal.
				d = addWaits(d, s)
			}
			// The wait for the scout's answer ends a tenth of maxWait
			// after this wait's, its spread included: one that wakes
			// late in the spread keeps the whole of it.
			scoutBy = now.Add(d).Add(maxWait / scoutGraceShare)
			if err := rl.wait(ctx, cancelOf(req), p, mark, now, d, budget, reopened, changed, gchanged, nil, pauseWake{}); err != nil {
				return p, time.Since(start), nil, err
			}
			if q := rl.splitFor(req, p); q != p {
				// p's state went to the partitions of its limits while
				// req waited: req waits in its own.
				p = q
			}
			continue
		}
		if (p.learned || p.quota != nil && p.limit > 0) && now.Sub(p.heard) > MaxBelievedReset {
			// With a store, the quota is the store's to pace: forgotten
			// here, it is not given to the store again (see learnShared).
			rl.unpace(p, now)
		}
		if paced && tok != p.lim {
			// The pace whose turn the attempt waited for was forgotten
			// meanwhile (Transport.ResetHost, unpace): that turn is
			// spent, and the attempt takes a token of the pace p follows
			// now, if any. Sent at it, it was one more request than a new
			// pace allows, whose bucket starts full.
			paced, tok = false, nil
		}
		if hedged && p.quota != nil && !p.handedOver && (p.limit > 0 || p.storePaces(now)) {
			// The store paces the quota the host announced (to this
			// Transport, or to another member of the fleet): its token
			// cannot be given back, and a copy would throw it away
			// once another copy answers first.
			p.mu.Unlock()
			return p, now.Sub(start), nil, fmt.Errorf("%w: %s: a hedged copy takes no token of the shared quota", ErrRateLimited, p.key)
		}
		// A store asks for its token first: the static pace's is taken
		// once the store says go now, so that it is taken when the
		// attempt is sent. Taken before the store's wait, the pace's next
		// token went meanwhile to another attempt, and the two were sent
		// together.
		asks := p.quota != nil && !leased && !p.handedOver
		may := false // p's pace has a token for the attempt, not taken yet
		if !paced && p.lim != nil {
			if asks {
				may = p.mayAllow(now)
			} else if p.allow(now) {
				paced, tok = true, p.lim
			}
		}
		if paced || may || p.lim == nil {
			if asks && rl.breakers != nil && rl.breakers.everOpened.Load() && rl.openPastLocked(req, p, minQuotaRetry) {
				// The breaker is open and refuses the attempt at once:
				// it goes on to it without a token of the store, which
				// cannot be given back. Taken, each call the breaker
				// refused spent one of the fleet's quota for nothing,
				// the member's callers taking it at the fleet's pace
				// for as long as the breaker stayed open. (A breaker
				// half-open lets a probe go, which needs its token.)
				p.inflight++
				p.mu.Unlock()
				return p, now.Sub(start), tok, nil
			}
			if asks {
				// The store is told the end of the bound of the
				// server's waits in all (the scout's grace included),
				// when that comes first: a token past it, which the
				// Transport refuses below, is left to the next attempt
				// by a store that leaves the tokens past a deadline
				// (see QuotaDeadlineTaker), not spent on this one.
				by, inAll := takeDeadline(startBy(ctx, budget), now, maxWait), false
				if !gated.IsZero() {
					if end := heldEnd(*gated, reopenedAt, scoutBy, maxWait); end.Before(by) {
						by, inAll = end, true
					}
				}
				if p.removed.Load() {
					// Evicted: a ResetHost made while the store
					// answers resets its partition (see orphans).
					rl.markWaiter(mark, p)
				}
				d, ok, retry := p.take(now, by)
				if ok || isClosed(retry) {
					// retry is Take's word for "ask again" when it has
					// no token: with one, the attempt waits for its
					// turn, not sent ahead of the fleet's pace when
					// retry closes. Handed out closed, it asks again
					// soon, as a delay that is not positive does, not
					// at once, again and again.
					if !ok {
						d = min(d, minQuotaRetry)
					}
					retry = nil
				}
				if d > 0 || !ok {
					if ok {
						// It holds a token for the attempt at its
						// turn: it paces a quota, maybe one another
						// member heard announced. (Without a token,
						// it may only be reading the partition's
						// state, as redisquota first does.)
						p.storePaced = now
					}
					if hedged {
						// A copy waits for none of the store's
						// tokens, which it would throw away once
						// another copy answers first.
						p.mu.Unlock()
						return p, now.Sub(start), nil, fmt.Errorf("%w: %s: a hedged copy takes no token of the shared quota", ErrRateLimited, p.key)
					}
				}
				if (d > 0 || !ok) && rl.openPastLocked(req, p, max(d, minQuotaRetry)) {
					// The breaker refuses the attempt when the store's
					// wait ends: it goes on to the breaker at once, as
					// from the other waits (see skipWait). A token the
					// store holds for it is spent either way.
					p.inflight++
					p.mu.Unlock()
					return p, now.Sub(start), tok, nil
				}
				if d > 0 || !ok {
					// Not sent now: the static pace's turn it waited
					// for, if any, is given back, as when a layer below
					// refuses the attempt (see giveBack); it takes one
					// again when the store lets it go.
					if tok != nil {
						p.owe(now)
					}
					paced, tok = false, nil
				}
				if !ok && inAll && p.taker != nil && d > 0 && !now.Add(d).Before(by) {
					// No token of the store before the end of the
					// bound in all: refused, as a token past it is.
					p.mu.Unlock()
					return p, now.Sub(start), nil, rl.refuseServerWait(p, now.Sub(*gated), d, maxWait)
				}
				if ok && d > 0 {
					// The fleet's pace is the server's: a wait for
					// its token is bounded as the local pace's is,
					// with the waits for the server's limits before
					// and after it. (The store's token cannot be
					// given back: a store holds it for this attempt.)
					if gated.IsZero() {
						*gated = now
					}
					if held := now.Sub(*gated); addWaits(held, d) > maxWait {
						if reopenedAt.IsZero() || now.Add(d).After(scoutBy) {
							p.mu.Unlock()
							return p, now.Sub(start), nil, rl.refuseServerWait(p, held, d, maxWait)
						}
						// The attempt waited out a spent quota (or
						// a pause), and the store paces the window
						// that began then at the fleet's pace, which
						// no answer fills as it fills the local
						// pace's bucket: refused now, it had waited
						// out the whole window for nothing, though
						// the server takes it. It waits for its
						// token as for the scout's answer, a tenth
						// of maxWait past the reset at most, and is
						// sent at it on the word of an answer heard
						// since (see below); the gate, looked at
						// again then, refuses it if that answer said
						// the quota is still spent.
						graced = true
					}
				}
				if !ok {
					// No token of the fleet's quota: a wait the
					// server's limits set, bounded with the pauses and
					// turns before and after it (*gated). After a
					// pause or a spent quota's reset, the store's
					// refusals may go on to scoutBy (the fleet's
					// members all take a token as the window opens,
					// and the next Take gives one).
					if gated.IsZero() {
						*gated = now
					}
					if next := max(d, minQuotaRetry); now.Add(next).After(heldEnd(*gated, reopenedAt, scoutBy, maxWait)) {
						// No token of the fleet's quota for as long
						// as a server may ask to wait: refused, as a
						// spent quota's wait that long is, not
						// waited to the call's deadline.
						p.mu.Unlock()
						return p, now.Sub(start), nil, rl.refuse(p, addWaits(now.Sub(*gated), next), fmt.Sprintf("no token of the shared quota within the longest wait a server may ask for (%v), the waits for the server's limits before it included", maxWait))
					}
				}
				if d > 0 || !ok {
					// forgot wakes the wait when Transport.ResetHost
					// clears the fleet's pace, and the token it held
					// with it (QuotaResetter).
					var forgot chan struct{}
					if _, resets := p.quota.(QuotaResetter); resets {
						forgot = p.forgotten()
					}
					p.mu.Unlock()
					leased = ok // the store's token is kept
					if !ok && d <= 0 {
						d = minQuotaRetry
					}
					if err := rl.wait(ctx, cancelOf(req), p, mark, now, d, budget, retry, forgot, nil, nil, pauseWake{}); err != nil {
						return p, time.Since(start), nil, err
					}
					if isClosed(forgot) {
						// Cleared by the store's Reset: so is the
						// token, and the wait for the scout's answer
						// it was held for (ResetHost's waiters try
						// again at once).
						leased, graced = false, false
					}
					continue
				}
			}
			if graced && p.heard.Before(reopenedAt) {
				// The store's token, past the bound, came before an
				// answer since the reset said the new window has
				// requests left: the attempt waits for the scout's
				// answer until scoutBy, as without a store, and is
				// refused when none is in flight or it does not come.
				if !p.scouting(reopenedAt) || !now.Before(scoutBy) {
					p.mu.Unlock()
					return p, now.Sub(start), nil, rl.refuseServerWait(p, now.Sub(*gated), 0, maxWait)
				}
				// forgot wakes the wait when Transport.ResetHost
				// clears what p learned: the attempt is sent then at
				// the token it holds, as ResetHost's waiters try again
				// at once.
				answered, forgot := p.answering(), p.forgotten()
				p.mu.Unlock()
				if err := rl.wait(ctx, cancelOf(req), p, mark, now, scoutBy.Sub(now), budget, answered, forgot, nil, nil, pauseWake{}); err != nil {
					return p, time.Since(start), nil, err
				}
				if isClosed(forgot) {
					graced = false
				}
				continue
			}
			if may {
				p.allow(now) // mayAllow said so, with p.mu held since
				paced, tok = true, p.lim
			}
			p.inflight++
			p.sent = now
			p.mu.Unlock()
			return p, now.Sub(start), tok, nil
		}
		if hedged {
			r := p.lim.ReserveN(now, 1)
			r.CancelAt(now) // the last reservation: its token comes back whole
			p.mu.Unlock()
			return p, now.Sub(start), nil, rl.refuse(p, r.DelayFrom(now), "a hedged copy does not wait for a token")
		}
		tn := p.reserve(now)
		d := tn.delay(now)
		// answered wakes an attempt whose turn comes past the bound of
		// the server's waits, when an answer of p is learned, while the
		// scout of the window its gate opened on is in flight (see
		// scouting), or for one to go as that scout (see nextScout):
		// until answerBy.
		var answered chan struct{}
		var answerBy time.Time
		// since is when the window whose scout's answer the attempt
		// may wait for began: when the gate that held it opened, or
		// the reset of the window of p's last count, over with no
		// count of the next yet (see overSince), when that came
		// first (a pause that ended after it).
		since := reopenedAt
		if d > 0 && rl.serverPaced(p) {
			// The pace is the server's: a wait for a token is bounded
			// as a wait it announced is, with those before it.
			if gated.IsZero() {
				*gated = now
			}
			held := now.Sub(*gated)
			if past := addWaits(held, d) > maxWait; past || pastDeadline(ctx, budget, now.Add(d)) {
				if over := p.overSince(now); !over.IsZero() && (since.IsZero() || over.Before(since)) && rl.static == 0 && (!over.After(now) || awaitsReset(held, over.Sub(now), maxWait)) {
					// The attempt came after the reset (or less
					// than resetPrecision before it, see
					// awaitsReset), which held it in no gate (or
					// held it in a pause that ended after it): the
					// pace is still that of the window before, a
					// burst of what was left of it (1, or none),
					// and the attempts that took turns before the
					// new window's first answer filled the bucket
					// were refused at once, though the server takes
					// them. They wait for that answer as those the
					// gate held do, a tenth of maxWait at most,
					// past the reset for one that came before it
					// (see resetPrecision). (Under a static limit, whose limiter keeps
					// its tokens, the answer fills nothing: see
					// pace. The attempt is refused as it would be
					// once the answer came, without waiting for
					// it.)
					if since = over; scoutBy.IsZero() {
						scoutBy = now.Add(maxWait / scoutGraceShare)
						if over.After(now) {
							scoutBy = over.Add(maxWait / scoutGraceShare)
						}
					}
				}
				// The quota the attempt waited for was reset (or the
				// window of the last count is over), and the attempt
				// sent first since is not answered yet: the pace is
				// still that of the window before (a burst of 1, or
				// of what was left of it). The attempt waits for that
				// answer, at most until its turn: a new window it
				// announces fills the pace's bucket (see pace), and
				// the attempt goes at once, as the server would take
				// it; one that says the quota is still spent leaves
				// the turn past the bound, or past the call's
				// deadline, and the attempt is refused then. Refused
				// at once, it had waited out the whole window for
				// nothing, or was refused a request the server takes.
				move, until := rl.nextScout(p, since, scoutBy, now, maxWait/scoutGraceShare)
				switch {
				case move == awaitScout:
					answered, answerBy = p.answering(), until
				case move == goScout:
					// No scout is in flight, and none has told of the
					// new window: the attempt is its scout (see
					// nextScout).
					p.cancelTurn(tn, now)
					p.inflight++
					p.sent = now
					p.mu.Unlock()
					return p, now.Sub(start), nil, nil
				case past:
					p.cancelTurn(tn, now)
					p.mu.Unlock()
					return p, now.Sub(start), nil, rl.refuseServerWait(p, held, d, maxWait)
				}
			}
		}
		end := now.Add(d) // of the attempt's wait: its turn, or the scout's answer by scoutBy
		if answered != nil && scoutBy.Before(end) {
			end = scoutBy
		}
		if !tn.ok() || pastDeadline(ctx, budget, end) {
			p.cancelTurn(tn, now)
			p.mu.Unlock()
			return p, now.Sub(start), nil, rl.refuse(p, d, "past the call's deadline")
		}
		// forgot wakes the wait for a turn of the server's pace when
		// Transport.ResetHost forgets that pace (see forget); rose, when
		// its rate rises (see setRate).
		var forgot, rose chan struct{}
		if p.learned && d > 0 {
			forgot, rose = p.forgotten(), p.rising()
		}
		// paused wakes it when the server announces a pause meanwhile
		// (see pausedPastTurn): one that holds it past the bound, or
		// past the deadline, once its turn comes refuses it then.
		var paused pauseWake
		if d > 0 {
			paused = p.pauseWakeOf(changed, gchanged)
		}
		p.mu.Unlock()
		for d > 0 {
			// A breaker that opens while the attempt waits wakes it
			// (taken before skipWait reads it): when its own will
			// refuse it at its turn, it gives the turn back and goes
			// on to it at once, as it would have before it waited.
			var opened <-chan struct{}
			if rl.breakers != nil {
				opened = rl.breakers.opened(req)
			}
			if rl.skipWait(req, p, d) {
				p.mu.Lock()
				p.cancelTurn(tn, p.at(now))
				p.mu.Unlock()
				return p, now.Sub(start), nil, nil
			}
			w := d
			if answered != nil {
				// The wait for the scout's answer past the bound (or
				// the deadline) is bounded too: a scout that hangs
				// holds the attempt a tenth of maxWait past its wait
				// for the reset, or past its first look, at most.
				if w = min(w, answerBy.Sub(now)); w <= 0 {
					p.mu.Lock()
					if isClosed(answered) {
						// An answer of p came as that wait ended,
						// learned before the attempt took p.mu: the
						// attempt looks at it at once, as one that
						// answer woke does (below), and takes a
						// token of the pace's bucket a new window's
						// count filled. Sent to nextScout, which the
						// scout's answer leaves no scout to wait
						// for, it was refused, though the server
						// takes it: the order of the goroutines
						// decided, and when the scout was answered
						// at once, up to 40 of a batch of 50 were.
						p.mu.Unlock()
					} else {
						now = p.at(time.Now())
						move, until := rl.nextScout(p, since, scoutBy, now, maxWait/scoutGraceShare)
						if move == awaitScout && now.Before(until) {
							// An attempt whose turn came first went
							// as the scout while this one waited for
							// one to go (see nextScout): it waits for
							// its answer.
							answered, answerBy = p.answering(), until
							p.mu.Unlock()
							continue
						}
						p.cancelTurn(tn, now)
						p.mu.Unlock()
						if move == goScout {
							// None went: the attempt looks again at
							// once, which sends it as the scout.
							break
						}
						return p, now.Sub(start), nil, rl.refuseTurn(p, now.Sub(*gated), d, maxWait)
					}
				}
			}
			if w > 0 {
				if err := rl.wait(ctx, cancelOf(req), p, mark, now, w, budget, opened, forgot, rose, answered, paused); err != nil {
					p.mu.Lock()
					p.cancelTurn(tn, p.at(time.Now()))
					p.mu.Unlock()
					return p, time.Since(start), nil, err
				}
			}
			now = time.Now()
			d = tn.delay(now)
			if d > 0 && isClosed(forgot) {
				// The pace is forgotten, and the turn with it (see
				// cancelTurn): the attempt looks again at once at
				// what holds it now.
				break
			}
			if d > 0 && isClosed(rose) {
				// The pace's rate rose: the turn comes sooner,
				// ahead of those taken since (see retime). One of
				// an older rate is spent, as a forgotten one is.
				p.mu.Lock()
				t, ok := p.retime(tn)
				if ok {
					tn, rose = t, p.rising()
				}
				p.mu.Unlock()
				if !ok {
					break
				}
				d = tn.delay(now)
			}
			if d > 0 && paused.woke() {
				// A pause was announced while the attempt waited
				// (or may have been, the fleet's): refused at once
				// when it passes the bound or the deadline, it is
				// not refused at the gate once its turn came, after
				// it slept for nothing.
				var err error
				if paused, err = rl.pausedPastTurn(ctx, p, tn, now, budget, *gated, maxWait); err != nil {
					return p, now.Sub(start), nil, err
				}
			}
			if d > 0 && isClosed(answered) {
				// An answer of p was learned while the turn was past
				// the bound, and did not fill the pace's bucket (that
				// woke the attempt through rose, to take a token of
				// the new one): the quota is still spent, or the
				// answer said nothing of it. The attempt waits on
				// while a scout is still in flight, or when its turn,
				// retimed by a rise, is within the bound; when no
				// answer since the window began told of it (see
				// unheardSince), it gives its turn back and looks
				// again at once, as at its first look, which sends it
				// as the next scout; it is refused otherwise.
				p.mu.Lock()
				now = p.at(now)
				held := now.Sub(*gated)
				if tn.lim != p.lim {
					// Another pace: the turn is spent, and the
					// attempt looks again at once (see cancelTurn).
					p.mu.Unlock()
					break
				}
				unheard := false
				move, until := rl.nextScout(p, since, scoutBy, now, maxWait/scoutGraceShare)
				switch {
				case addWaits(held, d) <= maxWait && !pastDeadline(ctx, budget, now.Add(d)):
					answered = nil
				case move == awaitScout:
					answered, answerBy = p.answering(), until
				case move == goScout:
					// Sent from here as the next scout, it went
					// into the pause the answer may have announced
					// without a count (a 429's or a 503's
					// Retry-After alone): the gate, looked at first
					// again, holds it then.
					p.cancelTurn(tn, now)
					unheard = true
				default:
					p.cancelTurn(tn, now)
					p.mu.Unlock()
					return p, now.Sub(start), nil, rl.refuseTurn(p, held, d, maxWait)
				}
				p.mu.Unlock()
				if unheard {
					break
				}
			}
		}
		if d > 0 {
			paced, tok = false, nil
			continue
		}
		paced, tok = true, tn.lim
	}
}

// scoutGraceShare is the share of WithMaxRetryAfter (a tenth) that an
// attempt whose turn of the pace passes the bound of the server's waits
// may wait, past the end of its wait for a spent quota's reset, for the
// answer of the attempt sent first since (see acquire).
const scoutGraceShare = 10

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

// roundTripAttempt sends req, attempt st (nil for none), through the
// layers below once its partition lets it go.
func (m *rateLimitTransport) roundTripAttempt(req *http.Request, st *attemptState) (resp *http.Response, err error) {
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
	if p == nil && rl.hostPauses.n.Load() != 0 && rl.hostPaused(k, &clock) {
		// A global limit's pause holds k's host and credential, and
		// pauseHost made no partition of k's route for it (a bucket
		// another credential's answer named, one dropped since): the
		// attempt waits in one made now, which starts paused.
		p = rl.lookup(k, true, &clock)
	}
	counted := false
	var tok *rate.Limiter // the limiter of p's pace whose token the attempt holds; nil for none
	if p != nil {
		var budget time.Time
		maxWait := rl.maxWait
		if st != nil {
			budget = st.latestStart()
			if st.callCfg != nil {
				maxWait = st.callCfg.maxRetryAfter // the call's (WithCallOptions)
			}
		}
		var gated time.Time // the attempt's, with st (see attemptState.gated)
		g := &gated
		if st != nil {
			g = &st.gated
		}
		q, waited, held, err := rl.acquire(ctx, req, p, clock.get(), budget, maxWait, st != nil && st.hedge > 0, g)
		if q != p {
			k, p = q.key, q // the host's limits were split while it waited
		}
		if st != nil {
			st.localWait += waited
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
		counted, tok = true, held
		if st != nil && held != nil {
			st.paceTok, st.pace = held, p // see giveBackStale
		}
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
	if st != nil && rl.slots {
		// The limit of attempts in flight below hands the attempt's slot
		// over, given back once the response is learned, on every way
		// out (see attemptState.keepsSlot).
		st.keepsSlot = true
		defer m.giveSlotBack(req.Context(), st, &resp)
	}
	resp, err = m.next.roundTrip(req, st)
	if tok != nil && st != nil {
		tok = st.paceTok // nil once a refused wait for a slot dealt with it (see giveBackStale)
	}
	if err != nil || resp == nil {
		if err == errSlotPaused && !st.slotPaused {
			// The host was paused while the attempt waited for a slot
			// of it (WithMaxInFlight), which it passed on: it waits for
			// the pause as the attempts that came after it do, then for
			// a slot again, as often as that happens (see afterSlotPaused).
			endFlight(p, &counted)
			return m.afterSlotPaused(req, st)
		}
		if tok != nil && (refusedLocally(err) || st != nil && (st.hedge > 0 && !st.reached || declinedUnsent(st) || mistakeUnsent(st, err))) {
			// Never sent (a hedged copy, too, whose attempt was
			// decided or failed before it reached the wire: see
			// hedgeRun.wire; a retry or a copy the base declined; a
			// request net/http refused to send, the caller's
			// mistake): its token is the next attempt's.
			p.giveBack(tok, time.Now())
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

// mistakeUnsent reports whether attempt st failed with err, the caller's
// mistake (a header net/http refuses to send: see requestCutShort), before
// its request left this process: the host never saw it, and a token of its
// pace spent on it would hold the next valid call, another goroutine's
// maybe, to a later turn. A body that broke is none: the host may have got
// the request's header (see bodyBroke), and its token is spent.
func mistakeUnsent(st *attemptState, err error) bool {
	return st.classified && st.neverSent && requestCutShort(err) && !bodyBroke(err)
}

// afterSlotPaused sends attempt st of req again, through the rate
// limiter's wait, after the attempt passed on the slot of its host it had
// waited for because the host was paused meanwhile (errSlotPaused), until
// it is sent or refused. The attempts it so makes return errSlotPaused to
// it rather than call it again (st.slotPaused), so that the stack does not
// grow with the pauses a host announces.
func (m *rateLimitTransport) afterSlotPaused(req *http.Request, st *attemptState) (*http.Response, error) {
	st.slotPaused = true
	defer func() { st.slotPaused = false }()
	for {
		resp, err := m.roundTripAttempt(req, st)
		if err != errSlotPaused {
			return resp, err
		}
	}
}

// giveSlotBack gives back the slot of its host that attempt st held, when
// the limit of attempts in flight handed it over (see
// attemptState.keepsSlot), and then delivers the breakers' state changes
// that layer leaves to the one that gives the slot back, as it does (see
// breakerSet.deliverAbove). *resp is the attempt's response, nil for none
// (a panic on its way up).
func (m *rateLimitTransport) giveSlotBack(ctx context.Context, st *attemptState, resp **http.Response) {
	st.keepsSlot = false
	s := st.slot
	if s == nil {
		return
	}
	st.slot = nil
	s.release()
	if b := m.rl.breakers; b != nil && b.pending.Load() {
		b.flushClosing(ctx, *resp)
	}
}
