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
// step and the lease that follows it write them. The resets go in the
// order of the Store's Resets, then the pauses in the order of its
// Pauses (see writeOrder), then the rest: a write that failed skips the
// partition's later ones, as a step's does. Close calls it once the
// refillers stopped; a write a Transport asks for after it read the
// partition (a Pause racing Close) is the member's alone. It returns the
// writes' errors, joined. parts are the Store's partitions (see
// allParts).
func (s *Store) flushParts(ctx context.Context, parts []*part) error {
	failed := make(map[*part]bool)
	var errs []error
	flush := func(p *part, write func(context.Context) error) {
		if failed[p] {
			return
		}
		if err := write(ctx); err != nil {
			failed[p] = true
			errs = append(errs, fmt.Errorf("redisquota: Close: the last writes of the partition %q failed, and stay the member's: %w", p.name, err))
		}
	}
	for _, p := range s.resets.parts() {
		flush(p, p.flushReset)
	}
	for _, p := range s.pauses.parts() {
		flush(p, p.flushPause)
	}
	for _, p := range parts {
		flush(p, p.flushRest)
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

// flushReset writes the partition's reset left to write, if any, under
// ctx (see flushParts).
func (p *part) flushReset(ctx context.Context) error {
	p.mu.Lock()
	reset, seq := p.resetReq.Load(), p.resetSeq.Load()
	p.mu.Unlock()
	if reset == 0 {
		return nil
	}
	err := p.writeReset(ctx, reset, seq)
	p.s.resets.written(p, seq, err == nil)
	if err != nil {
		return err
	}
	p.resetReq.CompareAndSwap(reset, 0)
	return nil
}

// flushPause writes the partition's pause left to write, if any, under
// ctx, unless a reset is left to write before it (see flushParts).
func (p *part) flushPause(ctx context.Context) error {
	p.mu.Lock()
	reset, u := p.resetReq.Load(), p.pauseDirty.Load()
	p.mu.Unlock()
	if reset != 0 || u == 0 {
		return nil
	}
	if err := p.writePause(ctx, u); err != nil {
		p.s.pauses.written(p, u, false)
		return err
	}
	p.pauseDirty.CompareAndSwap(u, 0)
	p.s.pauses.written(p, u, true)
	return nil
}

// flushRest writes the partition's quota learned or window reported, then
// its tokens to give back and the debt to charge, under ctx, unless a
// reset or a pause is left to write before them (see flushParts).
func (p *part) flushRest(ctx context.Context) error {
	p.mu.Lock()
	if p.resetReq.Load() != 0 || p.pauseDirty.Load() != 0 {
		p.mu.Unlock()
		return nil
	}
	learn := p.learnDirty.Swap(false)
	conf := p.confirm.Swap(nil)
	p.mu.Unlock()
	var err error
	if learn {
		limit, window := p.limit.Load(), time.Duration(p.window.Load())
		remaining, reset := -1, time.Time{}
		if r := p.seedReset.Load(); r != 0 {
			remaining, reset = int(p.seedLeft.Load()), p.s.at(r)
		}
		err = p.writeQuota(ctx, limit, window, remaining, reset, false)
	} else if conf != nil {
		err = p.writeQuota(ctx, conf.limit, conf.window, conf.remaining, conf.reset, true)
	}
	if err != nil {
		if learn {
			p.learnDirty.Store(true)
		}
		return err
	}
	p.callMu.Lock()
	defer p.callMu.Unlock()
	return p.giveBack(ctx, p.gen.Load(), 0, p.s.now())
}
