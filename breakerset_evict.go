package resilient

import (
	"time"

	"github.com/sony/gobreaker/v2"
)

// This file holds the bounds of the breaker set: its lists of breakers by
// state, least recently used last, and the removal of idle and excess
// breakers.

// entryList is a list of breakers, the most recently seen at the front.
type entryList struct {
	list[breakerEntry, *breakerEntry]
}

func (l *entryList) pushFront(e *breakerEntry) {
	e.list = l
	l.list.pushFront(e)
}

func (l *entryList) remove(e *breakerEntry) {
	l.list.remove(e)
	e.list = nil
}

func (e *breakerEntry) links() *listNode[breakerEntry] { return &e.listNode }

// listOf returns the list e belongs in, by its state; s.mu is held.
func (s *breakerSet) listOf(e *breakerEntry) *entryList {
	if e.state.Load() == int32(gobreaker.StateClosed) {
		return &s.closed
	}
	return &s.open
}

// place moves e to the front of the list of its state, with lastSeen now,
// unless it was removed; s.mu is held.
func (s *breakerSet) place(e *breakerEntry, now int64) {
	if e.list == nil {
		return
	}
	e.list.remove(e)
	e.lastSeen = now
	s.listOf(e).pushFront(e)
}

// dropIdle runs, with s.mu held, on an insertion that comes
// (Window + OpenTimeout)/2 or more after the previous one: it removes the
// closed breakers that have seen no attempt for longer than
// Window + OpenTimeout. It walks the closed list from its back, the least
// recently seen first, giving used breakers their second chance, and stops
// at the first breaker that is not idle: each step removes or moves a
// breaker, so its cost is amortized over the attempts and insertions.
func (s *breakerSet) dropIdle(now int64) {
	s.lastSweep = now
	s.dropIdleOf(&s.closed, now)
}

// dropIdleOf removes the breakers of l that have seen no attempt for
// longer than Window + OpenTimeout, with s.mu held, as dropIdle says.
func (s *breakerSet) dropIdleOf(l *entryList, now int64) {
	idle := now - int64(s.idleAfter)
	for steps := l.n; steps > 0 && l.tail != nil; steps-- {
		e := l.tail
		switch {
		case e.used.Load():
			e.used.Store(false)
			s.place(e, now)
		case s.listOf(e) != l:
			s.place(e, e.lastSeen) // it changed state: not idle
		case e.lastSeen < idle:
			s.remove(e)
		default:
			return
		}
	}
}

// makeRoom removes breakers, with s.mu held, until need more keys fit in
// the set: the open and half-open breakers that have seen no attempt for
// longer than Window + OpenTimeout first (see dropIdleOf), whose hosts are
// no longer called; then the least recently used closed breakers; when
// there are none left, the other spellings of the open and half-open ones
// (see dropAliases); and only when there are none either, the least
// recently used open and half-open breakers. The open breakers of hosts
// no longer called were kept until then, and once they filled the set the
// hosts still called removed each other's breaker at each call.
func (s *breakerSet) makeRoom(need int, now int64) {
	s.dropIdleOf(&s.open, now)
	for s.table.len()+need > s.max {
		if !s.evict(&s.closed, now, nil) && !s.dropAliases(&s.open, need) && !s.evict(&s.open, now, nil) {
			return // empty
		}
	}
}

// dropAliases removes aliases of the breakers of l, those of the least
// recently seen breakers first, with s.mu held, until need more keys fit
// in the set, and reports whether it removed any. A spelling removed costs
// its next attempt a lookup of its canonical key (see insert); the breaker
// it led to stays, with its state.
func (s *breakerSet) dropAliases(l *entryList, need int) bool {
	if s.table.len() == s.closed.n+s.open.n {
		return false // no aliases
	}
	dropped := false
	for e := l.tail; e != nil && s.table.len()+need > s.max; e = e.prev {
		if e.aliases == nil {
			continue
		}
		a := *e.aliases
		for len(a) > 0 && s.table.len()+need > s.max {
			s.table.delete(a[len(a)-1])
			a = a[:len(a)-1]
			dropped = true
		}
		if *e.aliases = a; len(a) == 0 {
			e.aliases = nil
		}
	}
	return dropped
}

// makeAliasRoom removes closed breakers, with s.mu held, until one more
// key fits in the set, for another spelling of e's host, and reports
// whether it does: e itself and the open and half-open breakers are kept.
func (s *breakerSet) makeAliasRoom(e *breakerEntry, now int64) bool {
	for s.table.len()+1 > s.max {
		if !s.evict(&s.closed, now, e) {
			return false
		}
	}
	return true
}

// evict removes the least recently used breaker of l that belongs in it,
// keep excepted (nil for none), and reports whether it removed one. A used
// breaker met on the way gets its second chance (moved to the front, its
// use recorded); one whose state no longer belongs in l moves to the other
// list. After a whole turn of the list, its back breaker goes whatever its
// flag.
func (s *breakerSet) evict(l *entryList, now int64, keep *breakerEntry) bool {
	for turn := l.n; l.tail != nil; turn-- {
		e := l.tail
		switch {
		case s.listOf(e) != l:
			s.place(e, e.lastSeen)
		case e == keep:
			if l.n == 1 {
				return false // keep alone is left
			}
			s.place(e, e.lastSeen)
		case turn > 0 && e.used.Load():
			e.used.Store(false)
			s.place(e, now)
		default:
			s.remove(e)
			return true
		}
	}
	return false
}

// remove deletes e and its aliases from the set; s.mu is held. The host's
// next attempt finds a new, closed breaker: when e was not closed, the
// observers and the logger are told of its change to closed (delivered by
// the next flush), and of nothing e's state machine does from now on.
func (s *breakerSet) remove(e *breakerEntry) {
	if e.list == nil {
		return
	}
	e.removed.Store(true)
	wake(&e.opening) // its waiters read the breaker that follows it
	s.tell(e, gobreaker.StateClosed, time.Now())
	s.last.CompareAndSwap(e, nil)
	e.list.remove(e)
	s.table.deleteNode(&e.node)
	if e.aliases != nil {
		for _, k := range *e.aliases {
			s.table.delete(k)
		}
	}
}

// each calls fn for every breaker of the set, aliases excepted; s.mu is
// held.
func (s *breakerSet) each(fn func(*breakerEntry)) {
	for _, l := range []*entryList{&s.closed, &s.open} {
		for e := l.head; e != nil; {
			next := e.next
			fn(e)
			e = next
		}
	}
}

// wake closes *ch, if any, and clears it: the attempts that wait on it
// read their breaker again (see breakerSet.opened); s.mu is held.
func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}
