package resilient

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// This file holds what an attempt waits for in its partition (see
// rateLimiter.acquire): the gate of a pause or a spent quota, the tokens of
// its pace, and the wait itself.

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
	if back := p.spentUntil(now); back.After(until) {
		return back, true, pause
	}
	return until, false, pause
}

// spentUntil returns when the announced remaining quota, used up at now
// by the attempts in flight (see quotaSpent), is back: at the reset (for
// a quota refilled continuously, when one more request is), as gate tells
// it; the zero time when it is not used up. p.mu is held.
func (p *partition) spentUntil(now time.Time) time.Time {
	return p.spentBy(now, p.inflight)
}

// spentBy returns when the announced remaining quota, used up at now by n
// requests counted against it, is back (see spentUntil); the zero time
// when it is not used up. p.mu is held.
func (p *partition) spentBy(now time.Time, n int) time.Time {
	if !p.quotaSpentBy(now, n) {
		return time.Time{}
	}
	back := p.reset
	if p.refillUnit > 0 {
		if t := p.refillFrom.Add(p.refillUnit * time.Duration(n-p.remaining+1)); t.Before(back) {
			back = t
		}
	}
	return back
}

// quotaSpent reports whether the announced remaining quota, with what was
// refilled of it since, is used up by the attempts in flight. p.mu is held.
func (p *partition) quotaSpent(now time.Time) bool {
	return p.quotaSpentBy(now, p.inflight)
}

// quotaSpentBy reports whether the announced remaining quota, with what
// was refilled of it since, is used up by n requests counted against it.
// p.mu is held.
func (p *partition) quotaSpentBy(now time.Time, n int) bool {
	if !p.reset.After(now) {
		return false
	}
	left := p.remaining
	if p.refillUnit > 0 {
		left += int(min(now.Sub(p.refillFrom)/p.refillUnit, time.Duration(n+1)))
	}
	return left <= n
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

// forgotten returns the channel that Transport.ResetHost closes when it
// forgets what p learned (see rateLimiter.forget), made when nobody waits
// for it yet. p.mu is held.
func (p *partition) forgotten() chan struct{} {
	if p.forgot == nil {
		p.forgot = make(chan struct{})
	}
	return p.forgot
}

// end ends an attempt's flight without a response to learn from.
func (p *partition) end() {
	p.mu.Lock()
	p.inflight--
	p.reopen(time.Now())
	p.answerHeard()
	p.mu.Unlock()
}

// scouting reports whether an attempt of p sent at or after since (the
// end of the gate that held a waiter: the reset of a spent quota, or the
// end of a pause; zero for none) may still be in flight: the scout of
// the window that began then, whose answer tells what is left of it. p
// counts the attempts in flight, not when each was sent: one sent before
// since and answered after the scout keeps this true until its answer,
// which the attempt timeout bounds as the scout's. p.mu is held.
func (p *partition) scouting(since time.Time) bool {
	return !since.IsZero() && p.inflight > 0 && !p.sent.Before(since)
}

// unheardSince reports whether an attempt of p was sent at or after since
// (the start of the window whose scout's answer an attempt waits for, see
// scouting; zero for none), and no answer of p has told of its quota
// since: the scout failed, or its answer announced no quota (a 500, a
// proxy's error page). An answer to a request sent before since, which
// arrived after it, tells of the window before (see heardSent). The pace
// is still the window's before, and the attempts whose turn of it passes
// the bound were refused when that answer came, though the server takes
// them: a batch was answered when its first call was, 40 of 50 refused
// when that one failed. The attempt that finds no scout in flight goes
// at once as the next, whose answer the others wait for, each until its
// scoutBy. p.mu is held.
func (p *partition) unheardSince(since time.Time) bool {
	return !since.IsZero() && !p.sent.Before(since) && p.heardSent.Before(since)
}

// scoutMove is what an attempt whose turn of the pace passes the bound
// of the server's waits does about the scout of the window that began
// when its gate opened (see rateLimiter.nextScout).
type scoutMove int

const (
	noScout    scoutMove = iota // none to wait for: the attempt is refused
	awaitScout                  // it waits for a scout's answer
	goScout                     // it goes at once as the next scout
)

// nextScout tells what an attempt of p whose turn of the pace passes the
// bound does about the scout of the window that began at since (zero for
// none), and until when it waits: for the answer of the scout in flight,
// until scoutBy (see scouting); with none in flight, it goes at once as
// the next (see unheardSince). When since is the reset of the window of
// p's last count (see overSince), it waits for that reset while it is
// still ahead (see resetPrecision); once it has come and no attempt was
// sent since, it waits for an attempt whose turn comes first to go as
// the scout, until the middle of its wait for the scout's answer (grace,
// from scoutBy back), and then goes as the scout itself, if none went,
// leaving the others the rest of that wait for its answer: the pace's
// bucket held no token at the reset (the quota spent a second before
// it), and those whose turn passed the bound were refused at once, 41 of
// a batch of 50, though the server takes them. (Sent at once, it went
// beside the turn that came next, two requests for the one a rolling
// window gives back at its reset, the second answered 429; or, at a
// reset believed a little early, before the server's. Sent at scoutBy,
// its answer came after the others' scoutBy, which refused them.) The
// scout takes no turn of the pace: an attempt whose turn comes while it
// is out goes beside it. On a rolling window whose answers are slower
// than the gap to that turn, the two go for the one request it gives back
// at a time, and the second is answered 429, as a plain client's would
// be; holding the turn to the scout's answer, or taking it for the scout,
// refused calls a fixed window took (TestRateLimitScoutTakesNoTurnPastItsWait,
// TestRateLimitSlowScoutTurnBeside). Not under a static limit (WithRateLimit), whose limiter keeps its tokens:
// no answer fills the pace's bucket (see pace), the attempts past the
// bound are refused whatever the scout's answer says, and each scout sent
// without a token went past the caller's own limit, one after another as
// fast as the host failed them. p.mu is held.
func (rl *rateLimiter) nextScout(p *partition, since, scoutBy, now time.Time, grace time.Duration) (scoutMove, time.Time) {
	switch {
	case p.scouting(since):
		return awaitScout, scoutBy
	case rl.static != 0:
		return noScout, time.Time{}
	case p.unheardSince(since):
		return goScout, time.Time{}
	case since.IsZero() || !p.heardSent.Before(since) || !since.Equal(p.overSince(now)):
		return noScout, time.Time{}
	case since.After(now):
		// The reset is less than resetPrecision away: the attempt waits
		// for it, and then as one made after it, not past scoutBy.
		if scoutBy.Before(since) {
			return awaitScout, scoutBy
		}
		return awaitScout, since
	}
	if at := scoutBy.Add(-grace / 2); now.Before(at) {
		return awaitScout, at
	}
	return goScout, time.Time{}
}

// overSince returns the reset of the window of p's last count (none left,
// or some: a Retry-After's pause announced since does not end it, see
// countReset), when that window is over at now, or ends less than
// resetPrecision after it, and no count of the window that follows has
// come yet; the zero time otherwise. The attempts of p sent since are the
// scouts of the new window (see scouting), whose first count fills the
// pace's bucket (see rateLimiter.update). (A response counts a window
// that follows only when its request was sent at or after that reset: the
// lead changes nothing there.) p.mu is held.
func (p *partition) overSince(now time.Time) time.Time {
	if p.countReset.IsZero() || p.countReset.Sub(now) >= resetPrecision {
		return time.Time{}
	}
	return p.countReset
}

// resetPrecision is how well the limiter knows the reset of a window
// announced in whole seconds: a server cuts the time left down to them
// ("RateLimit-Reset: 0" a moment before its reset), and the limiter reads
// it when the answer arrives, its delay later. The reset it believes is
// the latest of its readings of the window (see update), each up to an
// answer's delay after the server's, or up to a second before it: an
// attempt made less than a second before that reset cannot tell which
// window the server will count it in. It is held as one made after the
// reset (see overSince): when its turn of the pace passes the bound of
// the server's waits, it waits for the reset, and then for the new
// window's first answer (see nextScout), instead of being refused at
// once, when awaitsReset lets it. Nothing is sent before the reset the
// limiter believes, which would go into the old window's quota, spent
// maybe. (The old hour's last call, sent a tenth of a second before it
// ended and answered "Reset: 0" after it, left a batch made then a tenth
// of a second before the reset read late from the first answer that
// announced it: 41 of 50 were refused at once, though the server, in its
// new hour, took them all.)
const resetPrecision = time.Second

// awaitsReset reports whether an attempt held already for held, made lead
// before the reset of the window of its partition's last count (less than
// resetPrecision), whose turn of the pace passes the bound maxWait of the
// server's waits, waits for that reset and then for the new window's
// scout (see resetPrecision), rather than being refused at once as one
// made earlier is. The wait for the reset is within maxWait with those
// before it, as a spent quota's is: past it, a call bounded to 200 ms
// (zero: no wait) waited up to a second, and was refused then. And the
// scout it may become goes resetPrecision past the reset at the
// earliest (the middle of the tenth of maxWait that follows, see
// nextScout), for the reset believed may be that much before the
// server's: under a shorter maxWait (5 s: 250 ms past it), the scout of
// a batch refused at once before went into the window the old hour's
// last call had spent, and was answered 429.
func awaitsReset(held, lead, maxWait time.Duration) bool {
	return addWaits(held, lead) <= maxWait && maxWait/scoutGraceShare/2 >= resetPrecision
}

// answering returns the channel that answerHeard closes at the next
// answer of p, made when nobody waits for it yet. p.mu is held.
func (p *partition) answering() chan struct{} {
	if p.answer == nil {
		p.answer = make(chan struct{})
	}
	return p.answer
}

// answerHeard wakes the attempts waiting for the answer of a scout (see
// scouting): an attempt's flight in p ended, with its answer learned
// or without one. p.mu is held.
func (p *partition) answerHeard() {
	if p.answer != nil {
		close(p.answer)
		p.answer = nil
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

// tokensLeft returns the tokens of p's pace at now, those p owes
// included (see giveBack), and the generation of its rate (see
// partition.gen); 0 for none. p.mu is not held.
func (p *partition) tokensLeft(now time.Time) (float64, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim == nil {
		return 0, p.gen
	}
	return p.lim.TokensAt(now) + float64(p.owed), p.gen
}

// giveBackStale gives back to p's pace at now the token of lim that an
// attempt took before it waited for a slot of its host (WithMaxInFlight)
// from from to now, and that was refused at the end of the wait, when the
// token is still worth one: left, the tokens of the pace when the wait
// started at rate generation gen (see tokensLeft), with what lim refilled
// since and the token itself, are no more than lim's burst, so that the
// bucket never needed the token's room to hold its refill. Otherwise the
// bucket's cap absorbed the token while the attempt waited, and other
// attempts took what refilled in its place: given back once they had, it
// was one more request than the pace allows. It is then spent, as is one
// of a pace p no longer follows, or whose rate changed. p.mu is not held.
func (p *partition) giveBackStale(lim *rate.Limiter, left float64, gen uint64, from, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now = p.at(now)
	if p.lim != lim || p.gen != gen || lim.Limit() == rate.Inf {
		return
	}
	if left+float64(lim.Limit())*now.Sub(from).Seconds()+1 > float64(lim.Burst())+turnSlack {
		return
	}
	p.owe(now)
}

// mayAllow reports whether allow would take a token of p's pace at now,
// without taking it. p.mu is held, and p.lim is not nil.
func (p *partition) mayAllow(now time.Time) bool {
	if p.owed > 0 {
		p.capOwed(now)
		if p.owed > 0 {
			return true
		}
	}
	return p.lim.Limit() == rate.Inf || p.lim.Burst() >= 1 && p.lim.TokensAt(now) >= 1
}

// giveBack gives back to p's pace the token of an attempt that a layer
// below the rate limiter refused without sending it (the breaker open, no
// slot of WithMaxInFlight), so that the host's pace is spent on the
// requests it gets, not on those it never saw: refusals during an outage
// would otherwise empty the bucket, and hold the calls that follow to the
// pace's rate though the server's quota is left whole. lim takes a token
// back only from a reservation canceled before its time: p owes it
// instead (see allow), as far as capOwed lets it. lim is the limiter the
// token was taken of: a token of a pace p no longer follows (forgotten by
// Transport.ResetHost or unpace, and maybe learned anew since, whose
// bucket started full) is spent, not owed by the pace that replaced it.
func (p *partition) giveBack(lim *rate.Limiter, now time.Time) {
	p.mu.Lock()
	if p.lim == lim {
		p.owe(p.at(now))
	}
	p.mu.Unlock()
}

// owe is giveBack with p.mu held.
func (p *partition) owe(now time.Time) {
	if p.lim != nil {
		p.owed++
		p.capOwed(now)
	}
}

// capOwed bounds the tokens p owes by the room lim has at now for them, so
// that the requests sent never pass lim's pace: with lim's tokens, they
// never hold more than lim's burst, and tokens given back during a refill
// are lost once it fills the bucket, as they would be in it. While lim has
// turns reserved for attempts that wait (its tokens below zero), its
// bucket holds one token at each of those turns, which the tokens owed
// must leave room for: they are then one fewer than the burst at most (a
// token given back with a burst of 1 is lost), and taken at once, they
// leave those turns whole. The room is rounded down: the part of a token
// is lost. (Owed whole and lent the rest by lim, a part of one was taken
// again each time lim refilled the rest, ahead of the turns lim reserved
// behind it.) Called at each change of lim's tokens but its refill, it
// keeps the bound at every moment. p.mu is held, and p.lim is not nil.
func (p *partition) capOwed(now time.Time) {
	room := float64(p.lim.Burst()) - 1 // a token at each turn reserved
	if tokens := p.lim.TokensAt(now); tokens >= 0 {
		room = float64(p.lim.Burst()) - tokens
	}
	if float64(p.owed) > room {
		p.owed = max(0, int(room))
	}
}

// A turn is an attempt's turn of its partition's pace, taken at a time to
// come: a reservation of the partition's limiter, or a turn that an
// attempt which gave up waiting for it gave back (see cancelTurn).
type turn struct {
	lim *rate.Limiter     // the partition's limiter when t was taken
	gen uint64            // the partition's rate when t was taken (see partition.gen)
	r   *rate.Reservation // nil for a turn given back
	at  time.Time         // when it comes
}

// delay returns the wait for t from now; rate.InfDuration for a
// reservation that can never come.
func (t turn) delay(now time.Time) time.Duration {
	if t.r != nil {
		return t.r.DelayFrom(now)
	}
	return max(0, t.at.Sub(now))
}

// ok reports whether t can come (see rate.Reservation.OK).
func (t turn) ok() bool { return t.r == nil || t.r.OK() }

// maxFreed bounds the turns a partition holds given back (see cancelTurn):
// one given back beyond it is lost, as it was before turns were given
// back.
const maxFreed = 256

// turnSlack absorbs the float rounding of lim's tokens when cancelTurn
// tells whether lim took a turn back.
const turnSlack = 1e-6

// reserve takes the next turn of p's pace from now, when lim has no token
// to give at once: the first turn given back that has not come yet (see
// cancelTurn), unless lim's own next turn comes before it, else one of
// lim's, after those it gave. The turns given back that came while nobody
// took them are dropped: lim counts them spent, and sending one later
// could go past the pace. Each turn given back goes to one attempt. p.mu
// is held, and p.lim is not nil.
func (p *partition) reserve(now time.Time) turn {
	i := 0
	for i < len(p.freed) && p.freed[i].Before(now) {
		i++
	}
	p.freed = slices.Delete(p.freed, 0, i)
	if len(p.freed) > 0 && !p.ownTurnBefore(now, p.freed[0]) {
		t := turn{lim: p.lim, gen: p.gen, at: p.freed[0]}
		p.freed = slices.Delete(p.freed, 0, 1)
		return t
	}
	r := p.lim.ReserveN(now, 1)
	return turn{lim: p.lim, gen: p.gen, r: r, at: now.Add(r.DelayFrom(now))}
}

// ownTurnBefore reports whether lim, reserved at now, would give a turn
// before at. p.mu is held, and p.lim is not nil.
func (p *partition) ownTurnBefore(now, at time.Time) bool {
	limit := p.lim.Limit()
	if limit == rate.Inf {
		return true
	}
	if limit <= 0 || p.lim.Burst() < 1 {
		return false
	}
	need := 1 - p.lim.TokensAt(now)
	return need <= 0 || now.Add(time.Duration(need/float64(limit)*float64(time.Second))).Before(at)
}

// cancelTurn gives back t, the turn of an attempt that will not take it
// (refused, or its caller gave up while it waited), at now: the next
// attempt that must wait takes it (see reserve), instead of waiting behind
// a turn nobody will use. lim takes back a reservation only while no later
// one was made (see rate.Reservation.CancelAt): a turn given back before
// others, as the callers of an errgroup give up together, would otherwise
// hold every later caller one turn longer.
//
// A turn is given back once: to lim, or kept in p.freed, never both. It
// is kept only when lim took back none of it and still counts it spent (its
// tokens at now reach zero no earlier than t comes); a part of a token
// that lim took back (rate.Reservation.CancelAt gives back what no later
// reservation followed) loses the rest of the turn, rather than give it
// twice. A turn that has come is spent, and so is one of a pace p no longer
// follows: of another limiter (see dropPace), or taken before lim's rate
// changed (see partition.gen), whose time and worth in tokens are the old
// rate's; lim does not take it back either (rate.Reservation.CancelAt
// counts it at the old rate). p.mu is held.
func (p *partition) cancelTurn(t turn, now time.Time) {
	if t.lim != p.lim || t.gen != p.gen || !t.ok() {
		return
	}
	if t.r != nil {
		before := p.lim.TokensAt(now)
		t.r.CancelAt(now)
		if p.lim.TokensAt(now)-before > turnSlack {
			return // lim took it back, or a part of it
		}
	}
	if !t.at.After(now) || len(p.freed) >= maxFreed {
		return
	}
	if limit := float64(p.lim.Limit()); p.lim.TokensAt(now)+limit*t.at.Sub(now).Seconds() > turnSlack {
		return // lim does not count it spent
	}
	i, _ := slices.BinarySearchFunc(p.freed, t.at, time.Time.Compare)
	p.freed = slices.Insert(p.freed, i, t.at)
}

// setRate sets the rate of p's pace to r at now, and records the change
// (see newRate). A rate that rises wakes the attempts waiting for turns
// taken at the slower one, which lim gives sooner from then on: they take
// them at the new rate (see retime), ahead of the turns lim gives after the
// rise. Waited for at the slower rate, they went together with those,
// closer to them than r allows (and WithRateLimit's static limit, which
// caps the pace). p.mu is held, and p.lim is not nil.
func (p *partition) setRate(now time.Time, r rate.Limit) {
	old := p.lim.Limit()
	p.lim.SetLimitAt(now, r)
	p.newRate()
	if r > old && r != rate.Inf && p.rose != nil {
		p.rise = rateRise{at: now, from: old, to: r, gen: p.gen}
		p.wake()
	}
}

// wake wakes the attempts waiting for turns of p's pace (see rising), when
// any waits. p.mu is held.
func (p *partition) wake() {
	if p.rose != nil {
		close(p.rose)
		p.rose = nil
	}
}

// rateRise is a rise of the rate of a partition's pace: when, from and to
// which rate, and the generation of the rate it made (see partition.gen).
type rateRise struct {
	at       time.Time
	from, to rate.Limit
	gen      uint64
}

// rising returns the channel that setRate closes when the rate of p's pace
// rises, made when nobody waits for it yet. p.mu is held.
func (p *partition) rising() chan struct{} {
	if p.rose == nil {
		p.rose = make(chan struct{})
	}
	return p.rose
}

// retime returns t, a turn of p's pace taken before its rate last rose, at
// the time the new rate gives it: lim lacked the tokens of the turns it had
// reserved, one every 1/from up to the last, and refills them at the new
// rate from the rise on, so that they come one every 1/to from then, in the
// same order, all before the turns lim gives after the rise. ok is false
// for a turn of another pace, or of a rate older than the one that rose:
// it is spent (see cancelTurn). p.mu is held.
func (p *partition) retime(t turn) (turn, bool) {
	if t.lim != p.lim || p.rise.gen != p.gen || t.gen+1 != p.gen || !t.ok() {
		return t, false
	}
	at := t.at
	if d := at.Sub(p.rise.at); d > 0 {
		at = p.rise.at.Add(time.Duration(float64(d) * float64(p.rise.from) / float64(p.rise.to)))
	}
	return turn{lim: t.lim, gen: p.gen, at: at}, true
}

// newRate records that lim's rate changed: the turns given back at the old
// rate are dropped, and those taken at it are no longer given back (see
// cancelTurn). p.mu is held.
func (p *partition) newRate() {
	p.gen++
	p.freed = p.freed[:0]
}

// serverPaced reports whether p's pace is the server's: learned from its
// announced quota, and slower than the static limit (WithRateLimit) that
// caps it. A learned quota faster than the static limit leaves the
// caller's own pace binding, whose turns are bounded by the call's
// deadline alone, as before the server announced anything, not by
// WithMaxRetryAfter, which bounds the waits a server sets. p.mu is held.
func (rl *rateLimiter) serverPaced(p *partition) bool {
	return p.learned && (rl.static == 0 || p.lim.Limit() < rl.static)
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

// openPastLocked is openPast for an attempt of p, whose lock is held: the
// caller's BreakerSettings.Key, which openPast calls, may panic, and the
// lock is then released on the way out (see unlockIfPanicking), or every
// later attempt of p would hang on it, whatever its context.
func (rl *rateLimiter) openPastLocked(req *http.Request, p *partition, d time.Duration) bool {
	returned := false
	defer p.unlockIfPanicking(&returned)
	open := rl.openPast(req, d)
	returned = true
	return open
}

// pauseEnd returns when the pause of req's partition ends (the fleet's
// pause too, see quota.go): a time not after clock's when it is not paused,
// zero for a request without a partition. With spent, it is the later of
// that and when the quota a response announced used up is back (see
// usedUp).
func (rl *rateLimiter) pauseEnd(req *http.Request, clock *lazyNow, spent bool) time.Time {
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
	end := p.sharedPause(p.pauseUntil)
	if spent {
		if back := p.usedUp(req, p.at(clock.get())); back.After(end) {
			end = back
		}
	}
	return end
}

// holdsPaused reports whether req's partition is paused, or the quota a
// response announced is used up (see usedUp), and its breaker will not
// refuse it when that wait ends (see skipWait): acquire would make an
// attempt of req wait for it now. An attempt that waited for a slot of its
// host (WithMaxInFlight) while a response said so goes back to acquire,
// rather than into a quota the server said is spent.
func (rl *rateLimiter) holdsPaused(req *http.Request) bool {
	var clock lazyNow
	end := rl.pauseEnd(req, &clock, true)
	now := clock.get()
	return end.After(now) && !rl.openPast(req, end.Sub(now))
}

// usedUp returns when the remaining quota a response announced is back,
// when none of it is left at now (with what was refilled since), whatever
// the attempts in flight: an attempt counted among them (one that waited
// for a slot while the response came) is held by it as one that came
// after it is (see gate). Zero when some is left, and for a request of
// another route than the one that spent it once a request of another
// route was let through in its window (see mayProbe): that one is sent.
// p.mu is held.
func (p *partition) usedUp(req *http.Request, now time.Time) time.Time {
	if p.probed.After(now) && p.otherRoute(req) {
		return time.Time{}
	}
	return p.spentBy(now, 0)
}

// refusesAfter reports whether the pause of req's partition will make
// acquire refuse an attempt that starts after a wait of d: the pause then
// still runs, and ends at or after deadline (the call's, zero for none),
// or more than maxWait after the wait.
func (rl *rateLimiter) refusesAfter(req *http.Request, d time.Duration, deadline time.Time, maxWait time.Duration) bool {
	var clock lazyNow
	end := rl.pauseEnd(req, &clock, false)
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

// takeDeadline returns by when an attempt that asks its store for a token
// at now must start (see QuotaDeadlineTaker): the earlier of by (see
// startBy; zero for none) and maxWait from now, the longest wait for a
// token that acquire gives it (the bound of the waits in all, from when
// they first held it, comes earlier: see heldEnd).
func takeDeadline(by, now time.Time, maxWait time.Duration) time.Time {
	if end := now.Add(maxWait); by.IsZero() || end.Before(by) {
		return end
	}
	return by
}

// heldEnd returns the end of the bound of the waits for the server's
// limits, and for a store's token, that hold an attempt one after another
// from gated: maxWait after it, or, once the attempt waited out a pause or
// a spent quota's reset (reopenedAt not zero), scoutBy when that is later
// (the wait for the scout's answer, or for the store's token, past the
// bound: see scoutGraceShare).
func heldEnd(gated, reopenedAt, scoutBy time.Time, maxWait time.Duration) time.Time {
	end := gated.Add(maxWait)
	if !reopenedAt.IsZero() && scoutBy.After(end) {
		end = scoutBy
	}
	return end
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

// wait sleeps d, or until reopened, changed, gchanged, answered or one of
// paused's channels is closed, unless d passes ctx's deadline or the
// call's budget. A nil channel is never closed. It ends early with an error when ctx is done
// or cancel, the request's deprecated Cancel channel, is closed: the
// caller gave up. It ends early too when a Transport.ResetHost of p's
// host forgets p after p was removed from the table (see resetWatch),
// which closes the channels of p's waiters, as ResetHost does for the
// partitions the table holds.
func (rl *rateLimiter) wait(ctx context.Context, cancel <-chan struct{}, p *partition, mark *waitMark, now time.Time, d time.Duration, budget time.Time, reopened, changed, gchanged, answered <-chan struct{}, paused pauseWake) error {
	if pastDeadline(ctx, budget, now.Add(d)) {
		return rl.refuse(p, d, "past the call's deadline")
	}
	// Counted a waiter of p until acquire returns: a ResetHost made once
	// p is evicted resets p's store's partition (see orphans).
	rl.markWaiter(mark, p)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		watch, woke := rl.resetWatch(p)
		if woke {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("resilient: waiting for the rate limit of %s: %w", p.key, context.Cause(ctx))
		case <-cancel:
			return fmt.Errorf("resilient: waiting for the rate limit of %s: %w", p.key, errRequestCanceled)
		case <-timer.C:
		case <-reopened:
		case <-changed:
		case <-gchanged:
		case <-answered:
		case <-paused.raised:
		case <-paused.changed:
		case <-paused.gchanged:
		case <-watch:
			continue // resetWatch tells whether a ResetHost forgot p
		}
		return nil
	}
}

// pauseChanged returns w's PauseChanged channel for a wait of an attempt,
// first on its first look at the pause. A store that hands out a channel
// already closed (the one that woke the last wait, or a new one each time)
// would wake every wait at once: after the first look, a channel found
// closed is asked for once more, and, closed again, is none (the attempt
// waits on its timer; the change it tells came before the pause is read).
// A store's channel may close just as it is handed out, at a change that
// comes at that moment (redisquota's signal swaps the channel, then closes
// the old one): the second ask has the new one, and the attempt still
// wakes at the next change, a ResetHost of another member that lifts the
// pause.
func pauseChanged(w QuotaWatcher, first bool) <-chan struct{} {
	ch := w.PauseChanged()
	if first || !isClosed(ch) {
		return ch
	}
	if ch = w.PauseChanged(); isClosed(ch) {
		return nil
	}
	return ch
}

// pauseWatches returns the channels that tell of a change of the pause of
// p's store (changed) and of its host's global limit (gchanged), asked
// before the pause is read (see QuotaWatcher, pauseChanged); nil for none.
// p.mu is not held.
func (p *partition) pauseWatches(first bool) (changed, gchanged <-chan struct{}) {
	if p.watch != nil {
		changed = pauseChanged(p.watch, first)
	}
	if p.quota != nil {
		if g := p.global.Load(); g != nil && g.watch != nil {
			gchanged = pauseChanged(g.watch, first)
		}
	}
	return changed, gchanged
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

// addWaits returns a+b, two waits that are not negative, saturated at the
// largest Duration: a wait to a store's pause past what a Duration holds
// (a QuotaPartition's "for ever", the year 9999) is that largest Duration,
// and adding the time already held, or a spread, to it overflowed to a
// negative wait, which passed the bound of WithMaxRetryAfter and the
// deadline's check: the attempt spun on timers of no time.
func addWaits(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// refuseTurn refuses an attempt whose turn of the server's pace, d from
// now, passes the bound of the server's waits in all (see
// refuseServerWait), or else the call's deadline.
func (rl *rateLimiter) refuseTurn(p *partition, held, d, maxWait time.Duration) error {
	if addWaits(held, d) > maxWait {
		return rl.refuseServerWait(p, held, d, maxWait)
	}
	return rl.refuse(p, d, "past the call's deadline")
}

// refuseServerWait refuses a wait of d that the server set (a pause, a
// spent quota's reset, a turn of its pace) after the attempt was held
// already by such waits (a shared quota's refusals among them), which
// maxWait (WithMaxRetryAfter) bounds in all.
func (rl *rateLimiter) refuseServerWait(p *partition, held, d, maxWait time.Duration) error {
	if held > 0 {
		return rl.refuse(p, addWaits(held, d), fmt.Sprintf("in all, for pauses, turns of the pace and a shared quota without tokens one after another, longer than the longest wait a server may ask for (%v)", maxWait))
	}
	return rl.refuse(p, d, fmt.Sprintf("longer than the longest wait a server may ask for (%v)", maxWait))
}

func (rl *rateLimiter) refuse(p *partition, d time.Duration, why string) error {
	if d == rate.InfDuration {
		return fmt.Errorf("%w: %s: would wait forever", ErrRateLimited, p.key)
	}
	return fmt.Errorf("%w: %s: would wait %v, %s", ErrRateLimited, p.key, d, why)
}
