// The fleet's pause and its resets: a member's Pause written to Redis and
// published, the pauses and resets that come back through the channel.

package redisquota

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ownPause is a pause the member set (Pause): until, local ns, and
// pset, Redis's time (µs) when its write set it, zero until known. A reset
// that ran in Redis before pset, or before the write, did not clear it.
type ownPause struct {
	until, pset int64
}

// resetHold is a Reset of the member's own, numbered seq, that has not come
// back through the fleet's channel: the pauses and quotas published before
// it, which it cleared, are ignored. until (local ns) bounds the hold,
// should its message be lost; zero while Redis has not run it, the hold
// then ending resetHoldMax after the Reset.
type resetHold struct {
	seq, at, until int64
}

// stateRead is a state read (a lease call's reply, or a resync's) that
// applied a reset, reset, whose message had not come (see applyLease):
// at, Redis's time (µs) of the read, and recv, when its reply came (local
// ns). The fleet's messages published before the read, which may come
// after its reply (the reply overtook them), told what the state read
// holds already, or what the reset cleared: they are ignored (see
// covered), the reset's own message included, which tells what the state
// held when the reset ran (applied again, it dropped the leases granted
// since, forgot the quota written since and lifted the pause set since).
// A quota's message tells no time: one that comes before the reset's
// message was published before the reset, which cleared it; awaits while
// that message may still come (it has not, and the reset ran less than
// resetHoldMax before the read: an older one's came, or was lost; nor did
// it come before the Store made the partition, see Store.unheard).
type stateRead struct {
	reset    fleetReset
	at, recv int64
	awaits   bool
}

// liveRead returns the state read that applied a reset its message had
// not told (see stateRead), at t (local ns), nil for none: a message
// received resetHoldMax after the read was not on its way. p.mu is held.
func (p *part) liveRead(t int64) *stateRead {
	rd := p.readReset
	if rd != nil && t-rd.recv >= int64(resetHoldMax) {
		p.readReset, rd = nil, nil
	}
	return rd
}

// covered reports whether the fleet's message published at at (Redis's
// µs), received at t (local ns), was published before the state read
// that applied a reset its message had not told (see stateRead). The
// messages come in the order they were published: the first one
// published after the read ends it, and one published after the reset,
// the wait for the reset's message. p.mu is held.
func (p *part) covered(at, t int64) bool {
	rd := p.liveRead(t)
	if rd == nil {
		return false
	}
	if at >= rd.reset.at {
		rd.awaits = false // the reset's message came, or one after it
	}
	if at < rd.at {
		return true
	}
	p.readReset = nil
	return false
}

// quotaCovered reports whether the fleet's quota message received at t
// (local ns) was published before the reset a state read applied (see
// stateRead), which cleared it. p.mu is held.
func (p *part) quotaCovered(t int64) bool {
	rd := p.liveRead(t)
	return rd != nil && rd.awaits
}

// resetHoldMax bounds how long a member ignores the fleet's messages after
// its Reset, waiting for it to come back through the channel: from the
// Reset while Redis has not run it, from its run after.
const resetHoldMax = time.Second

// PauseUntil implements resilient.QuotaPartition: the zero time once the
// pause is over, read on the monotonic clock alone (an atomic load and a
// read of that clock); while it lasts, its end as a time.Time (see
// Store.at).
func (p *part) PauseUntil() time.Time {
	if pu := p.pause.Load(); pu > 0 && pu > p.s.now() {
		return p.s.at(pu)
	}
	return time.Time{}
}

// PauseChanged implements resilient.QuotaWatcher: the channel is closed at
// the partition's next signal, the one that wakes the requests waiting for
// a token too: a pause raised (the member's own or the fleet's), a reset
// (the member's own or another's, told through the fleet's channel), a
// lease granted, a fall back to local pacing.
func (p *part) PauseChanged() <-chan struct{} { return *p.ready.Load() }

// Pause implements resilient.QuotaPartition: the member sees the pause at
// once, and the refiller writes it to Redis, which tells the fleet. A
// pause that the one the member knows covers (the fleet's, set by another
// member) is written too, once per pause of the member's own that it
// outlasts: a reset that clears the covering pause, set before it, keeps
// this one, set after (see resetScript). The Store's pauses are written in
// Redis in the order of their Pauses (see writeOrder).
func (p *part) Pause(until time.Time) {
	u := p.s.local(until)
	p.mu.Lock()
	rose := p.raisePauseLocked(u)
	write := rose
	if !rose && u > p.s.now() {
		o := p.own.Load()
		write = o == nil || o.until < u
	}
	if write {
		p.own.Store(&ownPause{until: u})
		if u > p.pauseDirty.Load() {
			p.pauseDirty.Store(u)
			p.s.pauses.add(p, u)
		}
	}
	p.mu.Unlock()
	if rose {
		p.signal()
	}
	if write {
		p.wake()
	}
}

// pauseFor applies a pause of d from recv, set at set (Redis's µs), told
// by the fleet's channel, unless the member holds its own reset, or it
// was published before a state read that applied a reset (see covered):
// the state holds it, or the reset cleared it.
func (p *part) pauseFor(recv time.Time, set int64, d time.Duration) {
	if d <= 0 || d > maxPause {
		return
	}
	p.mu.Lock()
	t := p.s.since(recv)
	rose := !p.covered(set, t) && !p.holding(t) && p.raisePauseLocked(p.s.since(recv.Add(d)))
	p.mu.Unlock()
	if rose {
		p.signal()
	}
}

// raisePauseLocked raises the pause to u (local ns) and drops the
// leases held (their tokens would all conform when it ends, in one burst).
// It reports whether the pause rose: the caller then wakes the attempts
// waiting for a token (signal). p.mu is held.
func (p *part) raisePauseLocked(u int64) bool {
	if u <= p.pause.Load() {
		return false
	}
	p.pause.Store(u)
	t := p.s.now()
	for _, lp := range []*atomic.Pointer[lease]{&p.cur, &p.next} {
		if l := lp.Swap(nil); l != nil {
			p.giveback.Add(max(l.left(t), 0))
		}
	}
	return true
}

// holding reports whether the member ignores, at t (local ns), the
// fleet's messages: they were published before its own reset ran in Redis,
// and the reset cleared what they say, or will tell what it kept. p.mu is
// held.
func (p *part) holding(t int64) bool {
	h := p.hold.Load()
	if h == nil {
		return false
	}
	if h.until > 0 {
		return t < h.until
	}
	return t < h.at+int64(resetHoldMax)
}

// Reset implements resilient.QuotaResetter: the member forgets the pause
// and the quota at once (its leases with them: the bucket they came from
// is cleared), and the refiller runs the reset in Redis, which clears the
// pause and the quota there, unless another member set them after the
// Reset, and tells the fleet. Until the reset comes back through the
// fleet's channel (for resetHoldMax at most), the member ignores the
// pauses and quotas published before it, its own pause being written
// included: the reset cleared them, or its message tells what it kept.
// The Store's resets run in Redis in the order of their Resets (see
// writeOrder); a pause the reset cleared before its write holds the
// Store's later pauses no more.
func (p *part) Reset() {
	now := p.s.now()
	p.mu.Lock()
	seq := p.s.resetSeq.Add(1) // the Store's: see Store.resetSeq
	p.resetSeq.Store(seq)
	p.hold.Store(&resetHold{seq: seq, at: now})
	p.own.Store(nil)
	u := p.pauseDirty.Swap(0)
	p.resetLocked(0, 0, 0, false)
	p.resetReq.Store(now)
	p.s.resets.add(p, seq)
	p.mu.Unlock()
	if u != 0 {
		p.s.pauses.written(p, u, true)
	}
	p.signal()
	p.wake()
}

// fleetReset is a reset run in Redis: the reset numbered seq of the Store
// whose instance id is store, run at at (Redis's µs), told by its message
// or read from the state (rat, rby, rseq).
type fleetReset struct {
	store   string
	seq, at int64
}

// applyReset applies a reset told by the fleet's channel (a message
// received at recv), r, which left the pause until pause and the quota
// limit per window µs (0 for none), at now, Redis's times in µs. While the
// member holds a reset of its own, it ignores the earlier resets of the
// others, which its own follows; it ignores one published before a
// state read that applied a reset its message had not told (see
// covered): that reset's own, or an earlier one.
func (p *part) applyReset(recv time.Time, r fleetReset, pause, now, limit, window int64) {
	p.mu.Lock()
	if h := p.hold.Load(); h != nil {
		if r.store == p.s.instance && r.seq >= h.seq {
			p.hold.Store(nil)
		} else if p.holding(p.s.since(recv)) {
			p.mu.Unlock()
			return // an earlier reset: the member's own clears more
		}
	}
	if p.covered(r.at, p.s.since(recv)) {
		p.mu.Unlock()
		return // applied from the state, with what it held since
	}
	p.applyResetLocked(recv, r, pause, now, limit, window)
	p.mu.Unlock()
	p.signal()
}

// applyResetLocked applies the reset r, received at recv, after which the
// state held the pause until pause and the quota limit per window µs (0
// for none) at now, Redis's times in µs. The member keeps a pause of its
// own that Redis set after the reset, or has not set yet, and a quota it
// learned that its refiller has yet to write. p.mu is held; the caller
// signals.
func (p *part) applyResetLocked(recv time.Time, r fleetReset, pause, now, limit, window int64) {
	t := p.s.since(recv)
	p.resetAt = max(p.resetAt, r.at)
	keep := int64(0)
	if d := microsBetween(now, pause); d > 0 && d <= maxPause {
		keep = t + int64(d)
	}
	if o := p.own.Load(); o != nil {
		if o.pset == 0 || o.pset > r.at {
			keep = max(keep, o.until)
		} else {
			p.own.Store(nil)
		}
	}
	if keep <= t {
		keep = 0
	}
	p.resetLocked(keep, limit, microsBetween(0, window), p.learnDirty.Load())
}

// resetLocked applies a reset: the pause becomes pause (local ns, 0
// for none), and the quota limit per window, or, without one, none (unless
// keepLearned: a quota the member learned, not written yet), with the
// leases and the tokens to give back or charge, which belong to the bucket
// the reset cleared. The caller signals. p.mu is held.
func (p *part) resetLocked(pause, limit int64, window time.Duration, keepLearned bool) {
	p.gen.Add(1)
	p.pause.Store(pause)
	if believable(limit, window) {
		p.known(limit, window) // the bucket is kept: so are the leases
		return
	}
	if !keepLearned {
		p.limit.Store(0)
		p.window.Store(0)
		p.learnDirty.Store(false)
		p.seedReset.Store(0)
		p.confirm.Store(nil)
		p.confirmNext.Store(0)
	}
	p.cur.Store(nil)
	p.next.Store(nil)
	p.dryUntil.Store(0) // the bucket is cleared
	p.giveback.Store(0)
	p.debt.Store(0)
	p.lastBatch.Store(0)
}

// writePause writes the pause until u (local ns) to Redis, under parent.
func (p *part) writePause(parent context.Context, u int64) error {
	return p.runWrite(parent, p.pauseWrite(u))
}

// pauseWrite returns the write of the pause until u (local ns), or nil
// when it is over already (see writePause).
func (p *part) pauseWrite(u int64) *write {
	d := time.Duration(u - p.s.now())
	if d <= 0 {
		return nil // over already
	}
	return &write{p: p, script: pauseScript, keys: []string{p.key},
		args: []any{d.Microseconds(), p.s.channel, p.id, stateTTL.Milliseconds(), p.s.instance, maxPause.Microseconds()},
		done: func(cmd *redis.Cmd) error {
			vals, err := cmd.Slice()
			if err != nil {
				return err
			}
			set, ok1 := toInt(vals, 0)
			now, ok2 := toInt(vals, 1)
			if !ok1 || !ok2 {
				return p.s.badReply()
			}
			if set == 1 {
				p.s.st.pausesSent.Add(1)
			}
			// Redis holds the pause (or a later one) from now: a reset
			// that runs after clears it, and the member with it.
			p.mu.Lock()
			if o := p.own.Load(); o != nil && o.until == u && o.pset == 0 {
				p.own.Store(&ownPause{until: u, pset: now})
			}
			p.mu.Unlock()
			return nil
		}}
}

// writeReset runs the member's reset numbered seq, made at at (local
// ns), in Redis, under parent.
func (p *part) writeReset(parent context.Context, at, seq int64) error {
	return p.runWrite(parent, p.resetWrite(at, seq))
}

// resetWrite returns the write of the member's reset numbered seq, made
// at at (local ns) (see writeReset).
func (p *part) resetWrite(at, seq int64) *write {
	age := max(time.Duration(p.s.now()-at), 0)
	return &write{p: p, script: resetScript, keys: []string{p.key},
		args: []any{age.Microseconds(), p.s.channel, p.id, p.s.instance, seq, stateTTL.Milliseconds()},
		done: func(cmd *redis.Cmd) error {
			if err := cmd.Err(); err != nil {
				return err
			}
			p.s.st.resetsSent.Add(1)
			p.mu.Lock()
			if h := p.hold.Load(); h != nil && h.seq == seq && h.until == 0 {
				p.hold.Store(&resetHold{seq: seq, at: h.at, until: p.s.now() + int64(resetHoldMax)})
			}
			p.mu.Unlock()
			return nil
		}}
}
