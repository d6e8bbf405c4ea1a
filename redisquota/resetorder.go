// The order of the member's resets in Redis: the order in which Reset
// was called, so that the fleet hears them in that order.

package redisquota

import (
	"container/list"
	"errors"
	"sync"
)

// errResetWaits is part.step's when the partition's reset waits for an
// earlier one of the Store: the refiller made no Redis call, and waits for
// the kick of that reset's write.
var errResetWaits = errors.New("redisquota: a reset waits for the Store's earlier ones")

// resetOrder orders the writes of the member's resets (see part.Reset) in
// Redis, and with them their messages on the fleet's channel, as the
// Resets were called: each partition's refiller writes its own, and a
// reset waits until the Store's earlier ones are written, one after
// another. Transport.ResetHost resets a host's global limit last, so that
// a member whose wait for the global pause that reset ends finds the
// host's other partitions reset in Redis too (the partition it loads then
// included), and hears their resets first. A reset does not wait for an
// earlier one whose write failed, nor for one whose partition's last Redis
// call failed (its refiller waits out a backoff): those go when Redis
// answers them, in any order.
type resetOrder struct {
	mu      sync.Mutex
	queue   list.List // of *resetTurn, in the order of the Resets; guarded by mu
	pending map[*part]*list.Element
}

// resetTurn is a partition's reset to write, its seq-th Reset
// (part.resetSeq); failed once its write failed.
type resetTurn struct {
	p      *part
	seq    int64
	failed bool
}

// blocks reports whether t's reset, not written yet, holds the later ones
// back: its write has not failed, nor has its partition's last Redis call.
func (t *resetTurn) blocks() bool { return !t.failed && !t.p.degraded.Load() }

// add records p's Reset numbered seq, the Store's latest. It replaces p's
// reset not written yet, which this one follows and clears with it.
// p.mu is held.
func (o *resetOrder) add(p *part, seq int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = make(map[*part]*list.Element)
	}
	if e := o.pending[p]; e != nil {
		o.queue.Remove(e)
	}
	o.pending[p] = o.queue.PushBack(&resetTurn{p: p, seq: seq})
}

// waits reports whether p's reset must wait for an earlier one of the
// Store, which blocks: its refiller wakes p's when it wrote it.
func (o *resetOrder) waits(p *part) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for e := o.queue.Front(); e != nil; e = e.Next() {
		t := e.Value.(*resetTurn)
		if t.p == p {
			return false
		}
		if t.blocks() {
			return true
		}
	}
	return false
}

// written records the write of p's reset numbered seq: done when it ran
// in Redis, failed when it did not. Either way, the resets that waited for
// it and may go now are woken: those before the first that still blocks,
// and that one.
func (o *resetOrder) written(p *part, seq int64, done bool) {
	o.mu.Lock()
	if e := o.pending[p]; e != nil && e.Value.(*resetTurn).seq == seq {
		if done {
			o.queue.Remove(e)
			delete(o.pending, p)
		} else {
			e.Value.(*resetTurn).failed = true
		}
	}
	var next []*part
	for e := o.queue.Front(); e != nil; e = e.Next() {
		t := e.Value.(*resetTurn)
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
