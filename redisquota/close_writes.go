// Close's last writes of the partitions: what each partition held for its
// refiller to write when Close stopped it (a reset, a pause, a quota, the
// tokens to give back and the debt to charge), written once, in the order
// the refillers would have written them.

package redisquota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// flushParts writes, under ctx, what the Store's partitions (those it
// dropped to make room that are still held included) held for their
// refillers to write when Close stopped them: each partition's reset,
// then its pause, then the quota it learned or the window it reported,
// then the tokens to give back and the debt of its local limiter, as
// step and the lease that follows it write them. The writes go in four
// rounds, each one pipelined call (see writeRound), whatever the number
// of partitions: the resets, in the order of the Store's Resets, then the
// pauses, in the order of its Pauses (see writeOrder), then the quotas,
// then the give-backs. A write that failed skips the partition's later
// ones, as a step's does. (Made one call per write, the writes of a Store
// of hundreds of partitions, or of a slow Redis, spent Close's bound
// before the last of them, and those left were lost.) Close calls it once the refillers stopped;
// a write a Transport asks for after it read the partition (a Pause
// racing Close) is the member's alone. It returns the writes' errors,
// joined. parts are the Store's partitions (see allParts).
func (s *Store) flushParts(ctx context.Context, parts []*part) error {
	failed := make(map[*part]bool)
	var errs []error
	round := func(ps []*part, ordered bool, next func(*part) *write) {
		var ws []*write
		for _, p := range ps {
			if failed[p] {
				continue
			}
			if w := next(p); w != nil {
				ws = append(ws, w)
			}
		}
		for i, err := range s.writeRound(ctx, ws, ordered) {
			if err != nil {
				failed[ws[i].p] = true
				errs = append(errs, fmt.Errorf("redisquota: Close: the last writes of the partition %q failed, and stay the member's: %w", ws[i].p.name, err))
			}
		}
	}
	round(s.resets.parts(), true, (*part).flushReset)
	round(s.pauses.parts(), true, (*part).flushPause)
	round(parts, false, (*part).flushQuota)
	// A partition's give-back calls are numbered one after another (see
	// givebackSeq): its callMu is held from its write's making to its
	// reply's. Nothing else takes one now: the refillers stopped.
	for _, p := range parts {
		p.callMu.Lock()
	}
	round(parts, false, (*part).flushGiveback)
	for _, p := range parts {
		p.callMu.Unlock()
	}
	return errors.Join(errs...)
}

// allParts returns the Store's partitions, those it dropped to make room
// that are still held included.
func (s *Store) allParts() []*part {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]*part, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	eachDropped(s.droppedParts, func(p *part) { parts = append(parts, p) })
	return parts
}

// leave takes the member out of the heartbeats' count and out of the
// active members of each of parts (its lease calls counted it there, the
// first read of a partition's state included), in one pipelined call under
// ctx, so that the other members' next leases take its share at once
// rather than three heartbeats later (TestCloseLeavesPartitions). Like the
// heartbeats' entry, a partition's that the leave fails to delete expires
// after the member's ttl (see Store.memberTTL): its error is not Close's.
func (s *Store) leave(ctx context.Context, parts []*part) {
	s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.ZRem(ctx, s.membersKey, s.member)
		for _, p := range parts {
			pipe.ZRem(ctx, p.mkey, s.member)
		}
		return nil
	})
}

// flushReset returns the write of the partition's reset left to write,
// or nil for none (see flushParts).
func (p *part) flushReset() *write {
	p.mu.Lock()
	reset, seq := p.resetReq.Load(), p.resetSeq.Load()
	p.mu.Unlock()
	if reset == 0 {
		return nil
	}
	return p.resetWrite(reset, seq).then(func(err error) error {
		p.s.resets.written(p, seq, err == nil)
		if err == nil {
			p.resetReq.CompareAndSwap(reset, 0)
		}
		return err
	})
}

// flushPause returns the write of the partition's pause left to write, or
// nil for none or when a reset is left to write before it (see
// flushParts).
func (p *part) flushPause() *write {
	p.mu.Lock()
	reset, u := p.resetReq.Load(), p.pauseDirty.Load()
	p.mu.Unlock()
	if reset != 0 || u == 0 {
		return nil
	}
	written := func(err error) error {
		if err != nil {
			p.s.pauses.written(p, u, false)
			return err
		}
		p.pauseDirty.CompareAndSwap(u, 0)
		p.s.pauses.written(p, u, true)
		return nil
	}
	w := p.pauseWrite(u)
	if w == nil {
		written(nil) // over already
		return nil
	}
	return w.then(written)
}

// flushQuota returns the write of the partition's quota learned or window
// reported, or nil for none or when a reset or a pause is left to write
// before it (see flushParts).
func (p *part) flushQuota() *write {
	p.mu.Lock()
	if p.writesLeft() {
		p.mu.Unlock()
		return nil
	}
	learn := p.learnDirty.Swap(false)
	conf := p.confirm.Swap(nil)
	p.mu.Unlock()
	if !learn {
		if conf == nil {
			return nil
		}
		return p.quotaWrite(conf.limit, conf.window, conf.remaining, conf.reset, true)
	}
	limit, window := p.limit.Load(), time.Duration(p.window.Load())
	remaining, reset := -1, time.Time{}
	if r := p.seedReset.Load(); r != 0 {
		remaining, reset = int(p.seedLeft.Load()), p.s.at(r)
	}
	w := p.quotaWrite(limit, window, remaining, reset, false)
	if w == nil {
		return nil
	}
	return w.then(func(err error) error {
		if err != nil {
			p.learnDirty.Store(true)
		}
		return err
	})
}

// flushGiveback returns the write of the partition's tokens to give back
// and debt to charge, or nil for none or when a reset or a pause is left
// to write before it (see flushParts). p.callMu is held until its reply
// is applied.
func (p *part) flushGiveback() *write {
	p.mu.Lock()
	left := p.writesLeft()
	p.mu.Unlock()
	if left {
		return nil
	}
	return p.givebackWrite(p.gen.Load(), 0, p.s.now())
}

// writesLeft reports whether the partition's reset or pause is left to
// write, which its later writes follow. p.mu is held.
func (p *part) writesLeft() bool {
	return p.resetReq.Load() != 0 || p.pauseDirty.Load() != 0
}

// write is one Redis call of a partition's script that writes what the
// member holds: its script's keys and arguments, and done, which applies
// its reply (or its error) and returns the write's error. Made one at a
// time (runWrite) or pipelined with others (writeRound).
type write struct {
	p      *part
	script *redis.Script
	keys   []string
	args   []any
	done   func(cmd *redis.Cmd) error
}

// then makes f follow w's done, with its error, and returns w.
func (w *write) then(f func(err error) error) *write {
	done := w.done
	w.done = func(cmd *redis.Cmd) error { return f(done(cmd)) }
	return w
}

// runWrite makes w, if not nil, in one call of the partition under parent
// (see part.call), and returns its error.
func (p *part) runWrite(parent context.Context, w *write) error {
	if w == nil {
		return nil
	}
	var cmd *redis.Cmd
	p.call(parent, func(ctx context.Context) error {
		cmd = w.script.Run(ctx, p.s.rdb, w.keys, w.args...)
		return cmd.Err()
	})
	return w.done(cmd)
}

// writeRound makes ws, writes of one script, in one pipelined call under
// parent, and returns their errors, in their order. A Redis that lost the
// script (restarted, or its script cache flushed) loads it, and the writes
// it refused are sent again, as the budgets' syncs are (see syncBatch);
// the first of ws ordered is sent by the script's source, which loads it,
// so that another member's load between two of them does not let a later
// write run before an earlier one refused. A
// *redis.Client runs a pipeline's commands in their order; a
// *redis.ClusterClient sends each node's at once: ws ordered (the resets,
// the pauses: see writeOrder) are then made one call each.
func (s *Store) writeRound(parent context.Context, ws []*write, ordered bool) []error {
	errs := make([]error, len(ws))
	if len(ws) == 0 {
		return errs
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); cluster && ordered {
		for i, w := range ws {
			errs[i] = w.p.runWrite(parent, w)
		}
		return errs
	}
	// The partitions' calls are in progress (see part.call).
	var marked []*part
	t := s.now()
	for _, w := range ws {
		if w.p.callStart.CompareAndSwap(0, t) {
			marked = append(marked, w.p)
		}
	}
	defer func() {
		for _, p := range marked {
			p.callStart.Store(0)
		}
	}()
	cmds := make([]*redis.Cmd, len(ws))
	send := func(ctx context.Context) error {
		_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, w := range ws {
				switch {
				case cmds[i] == nil && i == 0 && ordered && len(ws) > 1:
					// By its source, which a Redis that lost the script
					// loads before it runs the later writes: none of them
					// is refused, to run again after those that follow it
					// (TestCloseWritesPausesInOrderWhenScriptsReloaded).
					cmds[i] = w.script.Eval(ctx, pl, w.keys, w.args...)
				case cmds[i] == nil || redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT"):
					cmds[i] = w.script.EvalSha(ctx, pl, w.keys, w.args...)
				}
			}
			return nil
		})
		return err
	}
	err := s.callIn(parent, send)
	if err != nil && anyNoScript(cmds) {
		if err = s.callIn(parent, func(ctx context.Context) error { return ws[0].script.Load(ctx, s.rdb).Err() }); err == nil {
			err = s.callIn(parent, send)
		}
	}
	for i, w := range ws {
		if cmds[i].Err() == nil && cmds[i].Val() == nil && err != nil {
			cmds[i].SetErr(err) // the call failed before Redis answered it
		}
		errs[i] = w.done(cmds[i])
	}
	return errs
}
