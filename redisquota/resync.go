package redisquota

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the resync: Redis's pub/sub delivers a message at most
// once, to the connections subscribed when it is published. go-redis
// reconnects a pub/sub connection on its own (after a connection error, or
// a health-check ping it sends when the channel is quiet that goes
// unanswered) and subscribes again, and what the fleet published
// meanwhile is lost. Each time the subscription is made again, the member
// reads what Redis holds of the fleet's state instead: what the messages
// it missed had told.

// resyncBatch is the most partitions one call of a resync reads.
const resyncBatch = 256

// errChanged is the error of a resync of which some partition changed
// while its state was read (a reset), or was writing a reset of the
// member's own: its state is read again.
var errChanged = errors.New("redisquota: a partition changed during its resync")

// resyncBudgets asks the syncer to sync every retry budget the Store
// reaches (those it dropped to make room that are still held included) at
// once: it learns the fleet's balances, whatever "b" message it missed.
func (s *Store) resyncBudgets() {
	s.mu.Lock()
	n := len(s.budgets)
	for _, b := range s.budgets {
		b.want.Store(true)
	}
	eachDropped(s.droppedBudgets, func(b *budget) {
		b.want.Store(true)
		n++
	})
	s.mu.Unlock()
	if n > 0 {
		s.kickBudgets()
	}
}

// resync reads the state of every partition the Store reaches (those it
// dropped to make room that are still held included), in one
// pipelined call per resyncBatch partitions, and applies what the member
// missed (see catchUp); and asks for a sync of every budget. It returns
// the error of a call that failed, or errChanged: the caller tries again.
func (s *Store) resync() error {
	s.resyncBudgets()
	s.mu.Lock()
	parts := make([]*part, 0, len(s.byID)+len(s.droppedParts))
	for _, p := range s.byID {
		parts = append(parts, p)
	}
	eachDropped(s.droppedParts, func(p *part) { parts = append(parts, p) })
	s.mu.Unlock()
	var err error
	for len(parts) > 0 {
		n := min(len(parts), resyncBatch)
		if e := s.readStates(parts[:n]); e != nil && (err == nil || err == errChanged) {
			err = e
		}
		parts = parts[n:]
	}
	return err
}

// readStates reads the states of parts in one pipelined call of the lease
// script that asks for no tokens (a partition's first read of the state,
// see part.lease) and applies them.
func (s *Store) readStates(parts []*part) error {
	gens, told := make([]int64, len(parts)), make([]int64, len(parts))
	cmds := make([]*redis.Cmd, len(parts))
	send := func(ctx context.Context) error {
		_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, p := range parts {
				p.mu.Lock()
				gen, t, resetting := p.gen.Load(), p.told, p.resetReq.Load() != 0
				p.mu.Unlock()
				gens[i], told[i], cmds[i] = gen, t, nil
				if resetting {
					continue // Redis holds what the reset clears: read it after
				}
				cmds[i] = leaseScript.EvalSha(ctx, pl, []string{p.key, p.mkey, p.gkey},
					0, 0, paceShare, burstFrac, (4 * s.cfg.leaseTime).Microseconds(), stateTTL.Milliseconds(),
					"", 0, "", 0, totalTTL.Microseconds(), maxPause.Microseconds(), maxWindow.Microseconds(), 0,
					p.heardAge(s.now()), maxHeard.Microseconds())
			}
			return nil
		})
		return err
	}
	err := s.call(send)
	if err != nil && anyNoScript(cmds) {
		// Redis restarted, the likely cause of the reconnection.
		if err = s.call(func(ctx context.Context) error { return leaseScript.Load(ctx, s.rdb).Err() }); err == nil {
			err = s.call(send)
		}
	}
	if err != nil && !wrongType(err) {
		return err
	}
	err = nil // a key of another type fails its own partition, whose refiller paces locally
	recv := time.Now()
	for i, p := range parts {
		if cmds[i] == nil {
			err = errChanged
			continue
		}
		vals, cerr := cmds[i].Slice()
		if wrongType(cerr) {
			continue
		}
		if cerr != nil {
			return cerr
		}
		r, ok := parseLease(vals)
		if !ok {
			return s.badReply()
		}
		if !p.catchUp(r, gens[i], told[i], recv) {
			err = errChanged
		}
	}
	return err
}

// catchUp applies the state r a resync read, received at recv, which the
// member may have missed messages of; gen and told are the partition's
// when the read was sent. The state is applied as a lease's reply (applyLease): the
// reset it records, if the member has not applied it; the pause, if later
// than the member's; the quota (when Redis lost it, the member writes its
// own again). It reports false when a reset came since the read was sent,
// which the state read may predate: the resync reads it again.
func (p *part) catchUp(r leaseReply, gen, told int64, recv time.Time) bool {
	p.mu.Lock()
	if p.gen.Load() != gen {
		p.mu.Unlock()
		return false
	}
	if r.reset.at > 0 {
		// The read was sent after the member's own latest Reset ran (none
		// was left to write): the state records that one or a later one,
		// and the messages published before it, which a hold of the
		// member's own ignores, were lost with the connection (or, should
		// the reset have run after go-redis subscribed again, wait behind
		// the member's, which clears what they tell).
		p.hold.Store(nil)
	}
	_, signal := p.applyLease(r, nil, gen, told, 0, recv)
	relearn := p.learnDirty.Load()
	p.mu.Unlock()
	if signal {
		p.signal()
	}
	p.readState()
	if relearn && p.running.Load() {
		p.wake() // a partition not in use writes it when it next is
	}
	return true
}
