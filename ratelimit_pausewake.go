package resilient

import (
	"context"
	"time"
)

// This file holds what wakes an attempt waiting for its turn of its
// partition's pace when the server announces a pause meanwhile (see
// rateLimiter.acquire): the pause may hold it past the bound of the
// server's waits, or past its deadline, once its turn comes.

// raisePause pauses p until until, when that is later than its pause, and
// wakes the attempts waiting for their turns of p's pace (see pausing).
// p.mu is held.
func (p *partition) raisePause(until time.Time) {
	if !until.After(p.pauseUntil) {
		return
	}
	p.pauseUntil = until
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

// pausing returns the channel that raisePause closes when p's pause is
// raised, made when nobody waits for it yet. p.mu is held.
func (p *partition) pausing() chan struct{} {
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
	return p.paused
}

// pauseWake is what wakes an attempt waiting for its turn of its
// partition's pace when a pause is announced: the partition's own pause
// raised (see partition.pausing), and its store's or its host's global
// limit's that may have changed (see QuotaWatcher); nil channels for
// none.
type pauseWake struct {
	raised, changed, gchanged <-chan struct{}
}

// woke reports whether one of w's channels is closed.
func (w pauseWake) woke() bool {
	return isClosed(w.raised) || isClosed(w.changed) || isClosed(w.gchanged)
}

// pauseWakeOf returns the pauseWake of an attempt of p waiting for its
// turn, the watchers' channels given (asked before the pause was read).
// p.mu is held.
func (p *partition) pauseWakeOf(changed, gchanged <-chan struct{}) pauseWake {
	return pauseWake{raised: p.pausing(), changed: changed, gchanged: gchanged}
}

// pausedPastTurn looks at the pause of p for an attempt woken by w while
// it waits for tn, its turn of p's pace, at now: a pause that will still
// hold it at its turn, and then ends more than maxWait after gated (when
// the server's limits first held it; from its turn when they have not
// yet: the bound the gate applies then), or at or after the call's
// deadline (ctx's, or budget, zero for none), refuses it at once, and
// its turn is given back (see cancelTurn), as the gate would at its turn,
// after it slept for nothing. Otherwise it keeps its turn, and the gate
// holds it then if the pause is still in force; pausedPastTurn returns
// the pauseWake of its next wait. p.mu is not held.
func (rl *rateLimiter) pausedPastTurn(ctx context.Context, p *partition, tn turn, now, budget, gated time.Time, maxWait time.Duration) (pauseWake, error) {
	changed, gchanged := p.pauseWatches(false) // asked before the pause is read
	p.mu.Lock()
	now = p.at(now)
	_, _, pause := p.gate(now)
	at := now.Add(tn.delay(now))
	if pause.After(at) {
		from, held := gated, now.Sub(gated)
		if gated.IsZero() {
			from, held = at, 0
		}
		var err error
		switch {
		case pause.Sub(from) > maxWait:
			err = rl.refuseServerWait(p, held, pause.Sub(now), maxWait)
		case pastDeadline(ctx, budget, pause):
			err = rl.refuse(p, pause.Sub(now), "past the call's deadline")
		}
		if err != nil {
			p.cancelTurn(tn, now)
			p.mu.Unlock()
			return pauseWake{}, err
		}
	}
	w := p.pauseWakeOf(changed, gchanged)
	p.mu.Unlock()
	return w, nil
}
