package redisquota

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the budgets' syncer: the background loop that sends each
// member's changes to Redis in one pipelined script call per batch, and
// applies the fleet's balance it answers (see budgetScript).

// maxSyncLag bounds how far behind the sync numbered in a budget's field
// a sync may be for the script to take it for a late one and apply
// nothing (see budgetScript): a late sync is one whose call timed out, a
// few syncs behind the member's latest. A number further ahead is a
// corrupt or hostile hand's, and a sync behind it is applied; one ahead
// by less holds the member's syncs back until the other members' syncs
// delete the field, an hour after the last sync that applied it. It bounds
// the numbers of a partition's give-back field (see leaseScript) alike.
const maxSyncLag = 1 << 20

// kick asks the syncer to sync the budget at once, once per sync.
func (b *budget) kick() {
	if !b.kicked.Load() && b.kicked.CompareAndSwap(false, true) {
		b.s.kickBudgets()
	}
}

// kickBudgets wakes the syncer.
func (s *Store) kickBudgets() {
	select {
	case s.budgetKick <- struct{}{}:
	default:
	}
}

// budgetLocal reports whether the budgets are the member's alone: the last
// sync failed, or the one in progress has not answered for
// WithFallbackAfter, or the Store is closed.
func (s *Store) budgetLocal() bool {
	if s.budgetDegraded.Load() {
		return true
	}
	cs := s.budgetCallStart.Load()
	return cs > 0 && s.now()-cs >= int64(s.cfg.fallbackAfter)
}

// syncBudgets is the Store's syncer: every WithBudgetSync, or at once when
// a member's spending asks for it (at most every tenth of that), it syncs
// the budgets that need it in one pipelined Redis call; while Redis fails,
// it tries again with backoff (20ms doubling to 1s), and the budgets are
// the member's alone. It first waits for the Store's subscription to the
// fleet's channel, so that no "b" message falls between its first sync and
// the subscription (the wait counts as a sync in progress: past
// WithFallbackAfter, the budgets are the member's alone until it ends).
func (s *Store) syncBudgets() {
	if !s.awaitSubscribed(&s.budgetCallStart, nil, nil) {
		return
	}
	tick := time.NewTicker(s.cfg.budgetSync)
	defer tick.Stop()
	gap := s.cfg.budgetSync / 10
	var last, retryAt time.Time
	var backoff time.Duration
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.budgetKick:
			if d := gap - time.Since(last); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-s.ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		now := time.Now()
		if now.Before(retryAt) {
			continue
		}
		batch := s.budgetsToSync(now)
		if len(batch) == 0 {
			continue
		}
		last = now
		if err := s.syncBatch(s.ctx, batch); err != nil {
			s.budgetDegraded.Store(true)
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			retryAt = time.Now().Add(backoff)
			continue
		}
		s.budgetDegraded.Store(false)
		backoff, retryAt = 0, time.Time{}
	}
}

// budgetsToSync returns the budgets to sync at now, of those the Store
// reaches (those it dropped to make room that are still held included):
// those the member changed and those wanted, and those below the burst
// changed or wanted in the last idleExit (to learn what the fleet
// deposits).
func (s *Store) budgetsToSync(now time.Time) []*budget {
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch []*budget
	add := func(b *budget) {
		t := b.tokens.Load()
		if t != b.synced.Load() || b.want.Load() || b.kicked.Load() {
			b.lastActive = now
		} else if t >= b.burst || now.Sub(b.lastActive) >= idleExit {
			return
		}
		batch = append(batch, b)
	}
	for _, b := range s.budgets {
		add(b)
	}
	eachDropped(s.droppedBudgets, add)
	return batch
}

// budgetSpent applies the fleet's message that the Store whose instance id
// is store started spending the budget id, full until then: the other
// Stores sync it at once, to learn that their answers refill it.
func (s *Store) budgetSpent(id, store string) {
	if store == s.instance {
		return
	}
	s.mu.Lock()
	b := s.budgetByID[id]
	if b == nil {
		b = findDropped(s.droppedBudgets, id)
	}
	s.mu.Unlock()
	if b != nil {
		b.want.Store(true)
		s.kickBudgets()
	}
}

// syncLast sends, in one last sync bounded by ctx, what the member changed
// in its retry budgets since the syncer's last sync: of the budgets a tick
// of the syncer would sync (see budgetsToSync), those that hold a change
// to send (see unsent), the syncer's backoff after a failure
// notwithstanding. A budget that holds none (new, or wanted, or below the
// burst and unchanged since its last sync) would only learn the fleet's
// balance, which a closed Store no longer reads: sent, it made Close fail
// while Redis was down, saying that changes were lost when there were none.
// Close calls it once the syncer stopped, which leaves the budgets'
// syncer-owned fields to it; it returns the sync's error, the changes it
// did not send being the member's alone.
func (s *Store) syncLast(ctx context.Context) error {
	batch := slices.DeleteFunc(s.budgetsToSync(time.Now()), func(b *budget) bool { return !b.unsent() })
	if len(batch) == 0 {
		return nil
	}
	if err := s.syncBatch(ctx, batch); err != nil {
		return fmt.Errorf("redisquota: Close: the retry budgets' last sync failed, and their changes since the one before stay the member's: %w", err)
	}
	return nil
}

// unsent reports whether the budget holds a change of the member's that
// no sync that answered sent: its view's net change, give-backs its view
// dropped, or give-backs. It reads the syncer's fields: syncLast calls
// it, once the syncer stopped.
func (b *budget) unsent() bool {
	return b.tokens.Load() != b.synced.Load() || b.drop.Load() != b.dropSent || b.given.Load() != b.givenSent
}

// syncBatch syncs budgets in one pipelined call, its Redis calls under
// parent: each sends the member's net change since its last sync and
// takes the fleet's balance back. A budget whose command failed keeps its
// change for the next sync; the script applies it once, however many
// times it is sent, by the running total it keeps under the budget's
// field (see budgetScript).
func (s *Store) syncBatch(parent context.Context, batch []*budget) error {
	t0 := make([]int64, len(batch))
	g0 := make([]int64, len(batch))
	d0 := make([]int64, len(batch))
	cmds := make([]*redis.Cmd, len(batch))
	send := func(ctx context.Context) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, b := range batch {
				b.want.Store(false)
				b.kicked.Store(false)
				// The give-backs first: one they count, the view or
				// the drops count too (Refund credits them first). One
				// the view counts alone is sent as a deposit, and pays
				// what the member owes at the next sync. The give-backs
				// the view dropped are sent as a change (cum), not in
				// delta: a balance Redis lost does not take them.
				g0[i] = b.given.Load()
				d0[i] = b.drop.Load()
				t0[i] = b.tokens.Load()
				delta := t0[i] - b.synced.Load()
				b.seq++
				cmds[i] = budgetScript.EvalSha(ctx, p, []string{b.key, b.fkey},
					b.field, b.cum+delta+d0[i]-b.dropSent, delta, b.burst, stateTTL.Milliseconds(), s.channel, b.id, s.instance, totalTTL.Microseconds(), g0[i], b.seq, maxSyncLag)
			}
			return nil
		})
		return err
	}
	s.budgetCallStart.Store(s.now())
	defer s.budgetCallStart.Store(0)
	err := s.callIn(parent, send)
	if err != nil && anyNoScript(cmds) {
		if err = s.callIn(parent, func(ctx context.Context) error { return budgetScript.Load(ctx, s.rdb).Err() }); err == nil {
			err = s.callIn(parent, send)
		}
	}
	var failed error
	for i, b := range batch {
		bal, cerr := cmds[i].Int64()
		if wrongType(cerr) {
			// The budget's key, not Redis: the budget alone is the
			// member's, until the key is gone, and so is its change,
			// which is sent no more. (The script applied it, if its
			// key of the fields alone was another type: the running
			// total counts it, as the field does.) Kept to send, and
			// the sync wanted again, it was synced every
			// WithBudgetSync for as long as the key lived, the host
			// called or not; it is synced as the others are, when the
			// member changes it.
			b.broken.Store(true)
			b.cum += t0[i] - b.synced.Load() + d0[i] - b.dropSent
			b.dropSent = d0[i]
			b.givenSent = g0[i]
			b.synced.Store(t0[i])
			continue
		}
		if cerr != nil {
			b.want.Store(true)
			failed = cerr
			continue
		}
		b.broken.Store(false)
		if bal < t0[i] {
			// Other members spent from the balance: the budget is in
			// use, whatever the member does (see regain).
			b.used.Store(s.now())
		}
		b.cum += t0[i] - b.synced.Load() + d0[i] - b.dropSent
		b.dropSent = d0[i]
		b.givenSent = g0[i]
		for {
			t := b.tokens.Load()
			n := bal + t - t0[i]
			if b.tokens.CompareAndSwap(t, min(n, b.burst)) {
				if n > b.burst {
					b.dropped(n-b.burst, g0[i], d0[i])
				}
				break
			}
		}
		b.synced.Store(bal)
	}
	if failed == nil && wrongType(err) {
		err = nil // Pipelined's error is the first command's: a key's, whose budget is the member's alone
	}
	if err == nil && failed != nil {
		// Every command ran (Pipelined returns the first one's error):
		// a reply was not as expected.
		err = s.badReply()
	}
	if err == nil {
		s.st.budgetSyncs.Add(1)
	}
	return err
}

// anyNoScript reports whether one of cmds failed because Redis does not
// hold its script (restarted, or its script cache flushed): Pipelined
// returns the first command's error, which may be another.
func anyNoScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// wrongType reports whether err is Redis's answer that a key holds
// another type than the script's command works on: a key of the Store's
// written by another hand, whose failure is its own, not Redis's.
func wrongType(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "WRONGTYPE")
}
