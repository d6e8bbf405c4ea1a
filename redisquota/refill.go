// The refiller: the goroutine of a partition in use that writes what the
// member learned, reads the fleet's state, and takes leases while there is
// demand (see lease.go for the leases themselves).

package redisquota

import "time"

// run is the partition's refiller: it writes what the member learned,
// takes leases while there is demand, and stops after idleExit without
// any. It reads the partition's state first, unless a refiller before it
// did while the Store held the partition: the fleet's messages, and the
// resyncs after a lost connection, have told the member the rest since,
// and a quiet API's requests cost no Redis call however sparse they are
// (each one after idleExit starts a refiller).
func (p *part) run() {
	if !p.awaitSubscribed() {
		return
	}
	backoff := time.Duration(0)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	idle := time.Now()
	lastActivity := p.activity()
	loaded := p.loaded.Load()
	for {
		wait, err := p.step(&loaded)
		switch {
		case err == errWriteWaits:
			// No Redis call: whether Redis answers is as it was. The
			// wait for the earlier reset's or pause's call counts as a
			// call in progress, from its start (the step that writes
			// the partition's keeps it): an attempt that finds it
			// longer than WithFallbackAfter paces locally.
			p.callStart.CompareAndSwap(0, p.s.now())
			wait, err = 0, nil
		case err != nil:
			p.degraded.Store(true)
			p.signal() // the waiting attempts fall back at once
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait = backoff
		default:
			if p.degraded.Swap(false) {
				p.signal()
			}
			backoff = 0
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.s.ctx.Done():
				return
			case <-timer.C:
				if err != nil {
					if a := p.activity(); a != lastActivity {
						lastActivity, idle = a, time.Now()
					} else if time.Since(idle) >= idleExit && p.failedIdle() {
						return // no demand while Redis fails
					}
					continue // Redis fails: idle counts from the last demand
				}
			case <-p.kick:
				if err != nil {
					// Redis fails: do not try again sooner than the
					// backoff, whatever the demand.
					select {
					case <-p.s.ctx.Done():
						return
					case <-timer.C:
					}
				} else if !p.waitForFleet(timer) {
					return
				}
			}
			idle = time.Now()
			continue
		}
		timer.Reset(idleExit - time.Since(idle))
		select {
		case <-p.s.ctx.Done():
			return
		case <-p.kick:
			timer.Stop()
			idle = time.Now()
			continue
		case <-timer.C:
		}
		if a := p.activity(); a != lastActivity {
			// Tokens were taken from a lease that needed no refill yet:
			// not idle.
			lastActivity, idle = a, time.Now()
			continue
		}
		// Idle: give back what is left and stop, unless work came.
		p.running.Store(false)
		if len(p.kick) == 0 && p.pauseDirty.Load() == 0 && !p.learnDirty.Load() && p.confirm.Load() == nil && p.resetReq.Load() == 0 {
			p.lastBatch.Store(0)
			p.returnTokens()
			return
		}
		if !p.running.CompareAndSwap(false, true) {
			return // another refiller took over
		}
	}
}

// waitForFleet waits, after a kick, for timer, when the fleet's next
// tokens come within a lease's reach (or the short wait after a reset or a
// lost quota), unless the member has something to write (a reset, a
// pause, a quota, tokens to give back, which the fleet may be waiting
// for), or the bucket the last lease found dry changed since (a quota the
// fleet's channel told, a reset: dryUntil cleared): a kick that brings
// demand alone would ask Redis for a lease it refuses again, one Redis
// call for each look of each attempt waiting for a token while the
// fleet's bucket is dry. It reports false when the Store is closed.
func (p *part) waitForFleet(timer *time.Timer) bool {
	for !p.toWrite() && p.dryUntil.Load() != 0 {
		select {
		case <-p.s.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-p.kick:
		}
	}
	timer.Stop()
	return true
}

// toWrite reports whether the member has a reset, a pause, a quota or
// tokens to give back for the refiller to write, or must ask whether the
// quota it knows is still heard announced: it has not known a member to
// hear it for maxHeard, and the lease script, which keeps when one last
// did, tells it, or forgets the quota.
func (p *part) toWrite() bool {
	return p.resetReq.Load() != 0 || p.pauseDirty.Load() != 0 || p.learnDirty.Load() || p.confirm.Load() != nil ||
		p.giveback.Load() != 0 || p.limit.Load() > 0 && p.stale(p.s.now(), p.heard.Load())
}

// failedIdle stops the refiller, whose Redis calls fail, of a partition
// that nobody used for idleExit, unless it must still write a reset (which
// the member promises the fleet) or a pause not over yet: without it, every
// partition used once while Redis is down or unreachable would keep a
// goroutine calling Redis until it answers. A quota to write stays to
// write, by the refiller the next demand starts; a pause over is written no
// more, and leaves the Store's order of pauses. It reports whether the
// refiller stops; when work came meanwhile, it keeps running.
func (p *part) failedIdle() bool {
	now := p.s.now()
	u := p.pauseDirty.Load()
	if p.resetReq.Load() != 0 || u > now {
		return false
	}
	if u != 0 && p.pauseDirty.CompareAndSwap(u, 0) {
		p.s.pauses.written(p, u, true)
	}
	p.running.Store(false)
	if len(p.kick) == 0 {
		return true
	}
	return !p.running.CompareAndSwap(false, true) // another refiller took over
}

// awaitSubscribed waits until the Store subscribed to the fleet's channel
// (or failed to), so that what the refiller loads first is not older than
// the messages the member receives: a quota written between the two
// would reach it by neither. The wait counts as a Redis call in progress:
// an attempt that finds it longer than WithFallbackAfter paces locally. It
// reports false when the Store is closed, or when nobody used the
// partition for idleExit while it waited (see failedIdle): the
// subscription does not come for as long as Redis, having accepted the
// connection, does not answer, and every partition used meanwhile kept a
// goroutine, and its place in the Store's table, until it did. The
// partition is then degraded, as after a failed call: it paces locally at
// once until a call of its next refiller succeeds.
func (p *part) awaitSubscribed() bool {
	return p.s.awaitSubscribed(&p.callStart, p.kick, func() bool {
		p.degraded.Store(true)
		return p.failedIdle()
	})
}

// activity returns what changes when the member takes tokens: the leases
// held and how many of them were taken.
func (p *part) activity() [3]int64 {
	var a [3]int64
	if l := p.cur.Load(); l != nil {
		a[0], a[1] = l.recv, l.taken.Load()
	}
	if l := p.next.Load(); l != nil {
		a[2] = l.recv
	}
	return a
}

// step does what the partition needs from Redis now: the reset, the pause
// and the quota to write (a pause and a quota made after a Reset are
// written after it, a Reset after the Store's earlier Resets, a Pause
// after its earlier Pauses: see writeOrder), the window to report, the
// state to load, a lease. It returns how long to wait before the next
// step, zero for until a kick.
func (p *part) step(loaded *bool) (wait time.Duration, err error) {
	// The step's calls are one wait for the attempts waiting for a token:
	// marked in progress from the step's start (or from the start of the
	// wait for an earlier reset, which it keeps), not from each call's,
	// so that an attempt paces locally WithFallbackAfter after it, however
	// many calls Redis answers in less (see part.call).
	p.callStart.CompareAndSwap(0, p.s.now())
	defer func() {
		if err != errWriteWaits {
			p.callStart.Store(0)
		}
	}()
	// One look at what to write, under the lock Reset, Pause and Learn
	// take: a pause or a quota seen with a Reset came after it.
	p.mu.Lock()
	reset, seq, u := p.resetReq.Load(), p.resetSeq.Load(), p.pauseDirty.Load()
	learn := p.learnDirty.Swap(false)
	conf := p.confirm.Swap(nil)
	p.mu.Unlock()
	fail := func(err error) (time.Duration, error) {
		if u > 0 && err != errWriteWaits {
			// The pause is not written: the Store's later ones do not
			// wait for it.
			p.s.pauses.written(p, u, false)
		}
		if learn {
			p.learnDirty.Store(true)
		}
		if conf != nil {
			p.confirm.CompareAndSwap(nil, conf)
		}
		return 0, err
	}
	if reset > 0 {
		if p.s.resets.waits(p) {
			// An earlier reset of the Store goes first; its write wakes
			// the refiller. What the member has to write comes after.
			return fail(errWriteWaits)
		}
		err := p.writeReset(p.s.ctx, reset, seq)
		p.s.resets.written(p, seq, err == nil)
		if err != nil {
			return fail(err)
		}
		p.resetReq.CompareAndSwap(reset, 0)
	}
	if u > 0 {
		if p.s.pauses.waits(p) {
			// An earlier pause of the Store goes first (a global 429's
			// of the host's partitions before its global limit's); its
			// write wakes the refiller.
			return fail(errWriteWaits)
		}
		if err := p.writePause(p.s.ctx, u); err != nil {
			return fail(err)
		}
		p.pauseDirty.CompareAndSwap(u, 0)
		p.s.pauses.written(p, u, true)
		u = 0 // written: a later call's failure does not touch its turn
	}
	if learn {
		// What the member reported, the write reports too.
		limit, window := p.limit.Load(), time.Duration(p.window.Load())
		remaining, reset := -1, time.Time{}
		if r := p.seedReset.Load(); r != 0 {
			remaining, reset = int(p.seedLeft.Load()), p.s.at(r)
		}
		if err := p.writeQuota(p.s.ctx, limit, window, remaining, reset, false); err != nil {
			return fail(err)
		}
	} else if conf != nil {
		if err := p.writeQuota(p.s.ctx, conf.limit, conf.window, conf.remaining, conf.reset, true); err != nil {
			return fail(err)
		}
	}
	t := p.s.now()
	if !*loaded || p.needLease(t) {
		wait, err := p.lease(t)
		if err != nil {
			return 0, err
		}
		if !*loaded {
			*loaded = true
			p.s.markLoaded(p)
			p.readState()
		}
		return wait, nil
	}
	return 0, nil
}
