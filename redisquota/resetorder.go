// The order of the member's resets, and of its pauses, in Redis: the
// order in which Reset, and Pause, were called, so that the fleet hears
// them in that order.

package redisquota

import (
	"container/list"
	"errors"
	"sync"
)

// errWriteWaits is part.step's when the partition's reset, or its pause,
// waits for an earlier one of the Store: the refiller made no Redis call
// for it, and waits for the kick of that one's write.
var errWriteWaits = errors.New("redisquota: a write waits for the Store's earlier ones")

// writeOrder orders the writes of the member's resets (see part.Reset), or
// of its pauses (part.Pause), in Redis, and with them their messages on
// the fleet's channel, as the Resets, or the Pauses, were called: each
// partition's refiller writes its own, and a write waits until the Store's
// earlier ones are written, one after another. Transport.ResetHost resets
// a host's global limit last, so that a member whose wait for the global
// pause that reset ends finds the host's other partitions reset in Redis
// too (the partition it loads then included), and hears their resets
// first; a global 429 pauses the global limit last, so that a member that
// sees the global pause finds the host's other partitions paused in Redis
// too, and a ResetHost it calls then clears them with it. A write does
// not wait for an earlier one whose write failed, nor for one whose
// partition's last Redis call failed (its refiller waits out a backoff):
// those go when Redis answers them, in any order.
type writeOrder struct {
	mu      sync.Mutex
	queue   list.List // of *writeTurn, in the order of the calls; guarded by mu
	pending map[*part]*list.Element
}

// writeTurn is a partition's reset to write, its Reset numbered seq
// (part.resetSeq), or its pause to write, until seq (local ns: see
// part.pauseDirty); failed once its write failed.
type writeTurn struct {
	p      *part
	seq    int64
	failed bool
}

// blocks reports whether t's write, not made yet, holds the later ones
// back: it has not failed, nor has its partition's last Redis call.
func (t *writeTurn) blocks() bool { return !t.failed && !t.p.degraded.Load() }

// add records p's write numbered seq, the Store's latest. It replaces p's
// write not made yet, which this one follows and covers.
// p.mu is held.
func (o *writeOrder) add(p *part, seq int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = make(map[*part]*list.Element)
	}
	if e := o.pending[p]; e != nil {
		o.queue.Remove(e)
	}
	o.pending[p] = o.queue.PushBack(&writeTurn{p: p, seq: seq})
}

// parts returns the partitions whose writes are to make, in their order.
func (o *writeOrder) parts() []*part {
	o.mu.Lock()
	defer o.mu.Unlock()
	ps := make([]*part, 0, o.queue.Len())
	for e := o.queue.Front(); e != nil; e = e.Next() {
		ps = append(ps, e.Value.(*writeTurn).p)
	}
	return ps
}

// waits reports whether p's write must wait for an earlier one of the
// Store, which blocks: its refiller wakes p's when it made it. A write
// that has no turn (a pause a Reset cleared meanwhile) waits for none.
func (o *writeOrder) waits(p *part) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending[p] == nil {
		return false
	}
	for e := o.queue.Front(); e != nil; e = e.Next() {
		t := e.Value.(*writeTurn)
		if t.p == p {
			return false
		}
		if t.blocks() {
			return true
		}
	}
	return false
}

// written records p's write numbered seq: done when it ran in Redis, or
// is no longer to make, failed when it did not run. Either way, the writes
// that waited for it and may go now are woken: those before the first
// that still blocks, and that one.
func (o *writeOrder) written(p *part, seq int64, done bool) {
	o.mu.Lock()
	if e := o.pending[p]; e != nil && e.Value.(*writeTurn).seq == seq {
		if done {
			o.queue.Remove(e)
			delete(o.pending, p)
		} else {
			e.Value.(*writeTurn).failed = true
		}
	}
	var next []*part
	for e := o.queue.Front(); e != nil; e = e.Next() {
		t := e.Value.(*writeTurn)
		if t.p != p {
			next = append(next, t.p)
		}
		if t.blocks() {
			break
		}
	}
	o.mu.Unlock()
	for _, q := range next {
		q.wake()
	}
}
