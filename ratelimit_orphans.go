package resilient

import (
	"slices"
	"sync"
)

// orphans holds the partitions removed from the table (evicted, dropped
// idle) that attempts still wait in, or ask their store's token of, whose
// store's partition implements QuotaResetter: Transport.ResetHost resets
// the store's partition of those of its host before it returns, as it
// resets those of the partitions the table holds (see resetOrphans).
// Their waiters, woken by ResetHost's signal (see resetWatch), forget
// them, and do not reset the store again: reset later, it wiped the pause
// a 429 had taken since ResetHost returned. It is safe for concurrent
// use; its lock is taken last, under rateLimiter.mu and partition.mu.
type orphans struct {
	mu  sync.Mutex
	set map[*partition]struct{}
}

// waitMark is the partition an attempt is counted a waiter of (see
// partition.waiters) from its first wait, or its first ask of the store
// once its partition is removed, until acquire returns; nil for none.
type waitMark struct {
	p *partition
}

// markWaiter counts the attempt of mark a waiter of p, and no longer of
// the partition it was counted in before, if another. Only a partition
// whose store's partition implements QuotaResetter counts its waiters.
func (rl *rateLimiter) markWaiter(mark *waitMark, p *partition) {
	if mark.p == p {
		return
	}
	rl.unmarkWaiter(mark)
	if _, ok := p.quota.(QuotaResetter); !ok {
		return
	}
	mark.p = p
	p.waiters.Add(1)
	if p.removed.Load() {
		rl.orphans.add(p)
	}
}

// unmarkWaiter ends the count of mark's attempt as a waiter of its
// partition (see markWaiter), if any.
func (rl *rateLimiter) unmarkWaiter(mark *waitMark) {
	p := mark.p
	if p == nil {
		return
	}
	mark.p = nil
	if p.waiters.Add(-1) == 0 && p.removed.Load() {
		rl.orphans.drop(p)
	}
}

// add records p, removed from the table, if attempts still wait in it. It
// is called both by remove, once p is removed, and by the first wait of an
// attempt in p once p is removed (markWaiter): one of them sees the other's
// mark, and a partition added twice is held once.
func (o *orphans) add(p *partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.waiters.Load() == 0 {
		return
	}
	if o.set == nil {
		o.set = make(map[*partition]struct{})
	}
	o.set[p] = struct{}{}
}

// drop forgets p once no attempt waits in it any longer: one that began to
// wait meanwhile keeps it (see add).
func (o *orphans) drop(p *partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.waiters.Load() == 0 {
		delete(o.set, p)
	}
}

// matching returns the partitions held whose keys m names, custom keys when
// custom says so (WithRateLimitKey).
func (o *orphans) matching(m hostMatcher, custom bool) []*partition {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ps []*partition
	for p := range o.set {
		if m.match(p.key.scheme, p.key.host, custom) {
			ps = append(ps, p)
		}
	}
	return ps
}

// resetOrphans resets, once each, the store's partitions of the removed
// partitions whose keys m names and that attempts wait in, but for those
// of the keys in done (the table's, which forget resets). It takes no
// lock of theirs: a waiter may hold it through a store's round trip. A
// store's Reset that panics takes its panic to the caller once the others
// are reset.
func (rl *rateLimiter) resetOrphans(m hostMatcher, done []*partition) {
	var rs []QuotaResetter
	var keys []partKey
	for _, p := range done {
		keys = append(keys, p.key)
	}
	for _, p := range rl.orphans.matching(m, rl.keyFn != nil) {
		if slices.Contains(keys, p.key) {
			continue
		}
		keys = append(keys, p.key)
		rs = append(rs, p.quota.(QuotaResetter)) // markWaiter counts no other
	}
	resetEach(rs)
}

// resetEach calls Reset on each of rs, those after one that panics
// included, before the panic goes on.
func resetEach(rs []QuotaResetter) {
	i := 0
	defer func() {
		if i < len(rs) { // rs[i]'s Reset panicked
			resetEach(rs[i+1:])
		}
	}()
	for ; i < len(rs); i++ {
		rs[i].Reset()
	}
}
