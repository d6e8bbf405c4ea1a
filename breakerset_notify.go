package resilient

import (
	"context"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// This file holds the delivery of the breakers' state changes to the
// observers and the logger.

// changed records a state change of e, which has its state machine.
// gobreaker calls it under e's lock: it must not block nor call back into
// the breaker, so it only queues the change for flush.
func (s *breakerSet) changed(e *breakerEntry, to gobreaker.State) {
	m := e.m.Load()
	now := time.Now()
	since := int64(now.Sub(s.epoch))
	if to == gobreaker.StateClosed {
		// A new closed spell: a new window, in place before the state
		// says closed.
		w := new(closedWindow)
		w.reset(since, s.period)
		e.win.Store(w)
	} else {
		e.win.Store(nil)
	}
	e.state.Store(int32(to))
	if to == gobreaker.StateOpen {
		m.openedAt.Store(since)
		s.everOpened.Store(true)
	}
	if to != gobreaker.StateHalfOpen {
		// The probes still in flight hold no slot of a later half-open
		// spell: forgotten, they do not tell its refusals when the next
		// probe goes (see refusal). No lock of ours is held while
		// calling into gobreaker, so taking pmu under its lock is safe.
		m.pmu.Lock()
		clear(m.probes)
		m.probes = m.probes[:0]
		m.pmu.Unlock()
	}
	// Keep the lists right: a change is an attempt's doing, so e is
	// recently used. gobreaker's lock is held; s.mu is never held while
	// calling into gobreaker, so the order is safe.
	s.mu.Lock()
	s.place(e, since)
	if to == gobreaker.StateOpen {
		wake(&e.opening) // the turns waited for (see opened)
		wake(&s.opening)
	}
	s.mu.Unlock()
	s.tell(e, to, now)
}

// tell queues the change of e to state to, at now, for flush to deliver,
// from the state the observers were last told of, unless that is to. Once
// e is removed from the set, only its removal tells (see remove): what its
// state machine does after, on behalf of attempts that found it before,
// is no longer the host's breaker.
func (s *breakerSet) tell(e *breakerEntry, to gobreaker.State, now time.Time) {
	m := e.m.Load()
	if m == nil || len(s.observers) == 0 && s.logger == nil {
		return // never tripped: closed, as the observers know it
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	from := m.told
	if from == to || e.removed.Load() && to != gobreaker.StateClosed {
		return
	}
	m.told = to
	if len(s.queue) < maxQueuedChanges {
		s.queue = append(s.queue, BreakerChange{Key: m.name, From: BreakerState(from), To: BreakerState(to), At: now})
	}
	s.pending.Store(true)
}

// flush delivers the queued state changes, in order, unless another
// goroutine is delivering them (possibly this one, when an observer uses
// the Transport): that one delivers them all before it stops.
func (s *breakerSet) flush(ctx context.Context) {
	for s.pending.Load() && s.delivering.CompareAndSwap(false, true) {
		s.deliverQueued(ctx)
	}
}

func (s *breakerSet) deliverQueued(ctx context.Context) {
	defer s.delivering.Store(false)
	for {
		s.qmu.Lock()
		batch := s.queue
		s.queue = nil
		s.pending.Store(false)
		s.qmu.Unlock()
		if len(batch) == 0 {
			return
		}
		s.deliverBatch(ctx, batch)
	}
}

// deliverBatch delivers batch, changes taken from the queue, in order.
// When an observer or the logger panics on one, the changes after it go
// back to the front of the queue, for the next flush, and the panic goes
// on.
func (s *breakerSet) deliverBatch(ctx context.Context, batch []BreakerChange) {
	i := 0
	defer func() {
		if i < len(batch) {
			s.requeue(batch[i+1:])
		}
	}()
	for ; i < len(batch); i++ {
		s.deliver(ctx, batch[i])
	}
}

// requeue puts changes, taken from the queue and not delivered, back at
// its front, before the ones queued since: the queue keeps its bound,
// dropping the latest.
func (s *breakerSet) requeue(changes []BreakerChange) {
	if len(changes) == 0 {
		return
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	q := append(changes, s.queue...) // changes' array is no longer the queue's
	s.queue = q[:min(len(q), maxQueuedChanges)]
	s.pending.Store(true)
}

// deliver reports one state change to the observers and the logger.
func (s *breakerSet) deliver(ctx context.Context, c BreakerChange) {
	s.deliverFrom(ctx, c, 0)
}

// deliverFrom reports change c to the observers from the i-th on, then to
// the logger. An observer that panics does not keep c from the ones after
// it nor from the logger (resilientotel's instrumentation, an audit log):
// they are told of it before its panic goes on.
func (s *breakerSet) deliverFrom(ctx context.Context, c BreakerChange, i int) {
	if i < len(s.observers) {
		returned := false
		defer func() {
			if !returned {
				s.deliverFrom(ctx, c, i+1)
			}
		}()
		s.observers[i](c)
		returned = true
		s.deliverFrom(ctx, c, i+1)
		return
	}
	s.log(ctx, c)
}

// log records change c with the logger, if any.
func (s *breakerSet) log(ctx context.Context, c BreakerChange) {
	if s.logger == nil {
		return
	}
	level := slog.LevelInfo
	if c.To == BreakerOpen {
		level = slog.LevelWarn
	}
	// The host in the key may hold any character past ASCII that a
	// redirect's URL names (a bidirectional override, a C1 control):
	// made safe as Attempt.Host is, so that the record cannot be shown
	// reordered nor split.
	s.logger.LogAttrs(ctx, level, "resilient: breaker state change",
		slog.String("breaker", safeText(c.Key, maxErrorText)),
		slog.String("from", c.From.String()),
		slog.String("to", c.To.String()),
	)
}
