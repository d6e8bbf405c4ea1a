// The order of the member's resets in Redis: the order in which Reset
// was called, so that the fleet hears them in that order.

package redisquota

import (
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
// reset waits until the Store's earlier ones are written. Transport.ResetHost
// resets the host's global limit last, so that a member whose wait for the
// global pause that reset ends finds the host's other partitions reset in
// Redis too (the partition it loads then included), and hears their resets
// first. A reset does not wait for an earlier one whose write failed, nor
// for one whose partition's last Redis call failed (its refiller waits out
// a backoff): those go when Redis answers them, in any order.
type resetOrder struct {
	mu      sync.Mutex
	made    int64               // the Resets made, which number them
	pending map[*part]resetTurn // the partitions with a reset to write; guarded by mu
}

// resetTurn is a partition's reset to write: the n-th Reset of the Store,
// the partition's seq-th (part.resetSeq), failed once its write failed.
type resetTurn struct {
	n, seq int64
	failed bool
}

// add records p's Reset numbered seq, the Store's latest. It replaces p's
// reset not written yet, which this one follows and clears with it.
// p.mu is held.
func (o *resetOrder) add(p *part, seq int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = make(map[*part]resetTurn)
	}
	o.made++
	o.pending[p] = resetTurn{n: o.made, seq: seq}
}

// waits reports whether p's reset must wait for an earlier one of the
// Store, still to write by a partition whose refiller will write it when
// its turn comes.
func (o *resetOrder) waits(p *part) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	mine, ok := o.pending[p]
	if !ok {
		return false
	}
	for q, t := range o.pending {
		if t.n < mine.n && !t.failed && !q.degraded.Load() {
			return true
		}
	}
	return false
}

// written records the write of p's reset numbered seq: done when it ran
// in Redis, failed when it did not. Either way, the resets that waited for
// it go: their refillers are woken.
func (o *resetOrder) written(p *part, seq int64, done bool) {
	o.mu.Lock()
	t, ok := o.pending[p]
	if ok && t.seq == seq {
		if done {
			delete(o.pending, p)
		} else {
			t.failed = true
			o.pending[p] = t
		}
	}
	var next []*part
	for q := range o.pending {
		if q != p {
			next = append(next, q)
		}
	}
	o.mu.Unlock()
	for _, q := range next {
		q.wake()
	}
}
