package redisquota

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
)

// LearnHash is the SHA-1 of the script that writes a learned quota, for the
// tests that count its calls.
var LearnHash = learnScript.Hash()

// BudgetHash is the SHA-1 of the script that syncs a retry budget.
var BudgetHash = budgetScript.Hash()

// BudgetKey returns the Redis key of the retry budget named name.
func (s *Store) BudgetKey(name string) string { return budgetKey(s.cfg.prefix, budgetID(name)) }

// BudgetView returns the member's view of the retry budget named name, and
// the balance of its last sync, in tokens; false if the Store holds none.
func (s *Store) BudgetView(name string) (view, synced float64, ok bool) {
	s.mu.Lock()
	b := s.budgets[name]
	s.mu.Unlock()
	if b == nil {
		return 0, 0, false
	}
	return float64(b.tokens.Load()) / budgetUnit, float64(b.synced.Load()) / budgetUnit, true
}

// SyncBudget runs the script that syncs the retry budget whose key is key
// once, for the running-total field field, with the net change cum in all
// and delta since the last sync, in thousandths of a token; it returns the
// balance.
func SyncBudget(s *Store, key, field string, cum, delta, burst int64) (int64, error) {
	return budgetScript.Run(s.ctx, s.rdb, []string{key, key + ":fields"}, field, cum, delta, burst,
		stateTTL.Milliseconds(), s.channel, "test", s.instance, totalTTL.Microseconds(), 0).Int64()
}

// IdleExit is how long a budget below its burst is synced after its
// member last changed it.
const IdleExit = idleExit

// TotalTTL is how long a Store's running-total field outlives its last use.
const TotalTTL = totalTTL

// ForgetBudget forgets the budget named name, as when it is dropped to
// make room, and reports whether the Store held it.
func (s *Store) ForgetBudget(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.budgets[name]
	if b != nil {
		s.forgetBudgetLocked(b)
	}
	return b != nil
}

// ForgetPartition forgets the partition named name, as when it is dropped
// to make room, and reports whether the Store held it.
func (s *Store) ForgetPartition(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[name]
	if p != nil {
		s.forgetPartLocked(p)
	}
	return p != nil
}

// ForgetPartitionCollected forgets the partition named name as when it is
// dropped to make room and, once nothing holds it, collected: the Store
// reaches it no more. It reports whether the Store held it.
func (s *Store) ForgetPartitionCollected(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[name]
	if p != nil {
		s.forgetPartLocked(p)
		takeDropped(s.droppedParts, p.id)
	}
	return p != nil
}

// GivebackField returns the give-back field in Redis of the partition q.
func GivebackField(q resilient.QuotaPartition) string { return q.(*part).gbField }

// BudgetsLocal reports whether the Store's budgets are the member's alone.
func (s *Store) BudgetsLocal() bool { return s.budgetLocal() }

// LeaseHash is the SHA-1 of the script that leases tokens and takes back
// those given back.
var LeaseHash = leaseScript.Hash()

// StateKey returns the Redis key of the state of the partition named name,
// without creating the partition.
func (s *Store) StateKey(name string) string { return StateKeyIn(s.cfg.prefix, name) }

// StateKeyIn is StateKey for the Stores under prefix.
func StateKeyIn(prefix, name string) string { return prefix + ":{" + budgetID(name) + "}" }

// MembersKey returns the Redis key of the fleet's heartbeats (a sorted
// set of the member ids of the members that have not left).
func (s *Store) MembersKey() string { return s.membersKey }

// Instance returns the Store's instance id.
func (s *Store) Instance() string { return s.instance }

// RunReset runs the script that resets the partition named name once, as
// the Store's reset numbered seq, made age ago.
func RunReset(s *Store, name string, age time.Duration, seq int64) error {
	return resetScript.Run(s.ctx, s.rdb, []string{s.StateKey(name)},
		age.Microseconds(), s.channel, budgetID(name), s.instance, seq, stateTTL.Milliseconds()).Err()
}

// RunGiveback runs the lease script once for the partition named name,
// without a lease: it gives back delta tokens as the Store whose field is
// field, having given back cum in all.
func RunGiveback(s *Store, name, field string, cum, delta int64) error {
	key := s.StateKey(name)
	return leaseScript.Run(s.ctx, s.rdb, []string{key, key + ":members", key + ":gb"},
		0, delta, paceShare, burstFrac, 0, stateTTL.Milliseconds(), "", 0, field, cum, totalTTL.Microseconds()).Err()
}

// RunGivebackSeq is RunGiveback for a call numbered seq (see leaseScript).
func RunGivebackSeq(s *Store, name, field string, cum, delta, seq int64) error {
	key := s.StateKey(name)
	return leaseScript.Run(s.ctx, s.rdb, []string{key, key + ":members", key + ":gb"},
		0, delta, paceShare, burstFrac, 0, stateTTL.Milliseconds(), "", 0, field, cum, totalTTL.Microseconds(),
		maxPause.Microseconds(), maxWindow.Microseconds(), 0, -1, maxHeard.Microseconds(), seq, maxSyncLag).Err()
}

// GiveBack adds n tokens to those the partition q gives back with its next
// lease, and wakes its refiller, as a lease whose tokens expired untaken
// does.
func GiveBack(q resilient.QuotaPartition, n int64) {
	p := q.(*part)
	p.giveback.Add(n)
	p.wake()
}

// Known returns the quota the partition q knows: limit per window.
func Known(q resilient.QuotaPartition) (int64, time.Duration) {
	p := q.(*part)
	return p.limit.Load(), time.Duration(p.window.Load())
}

// Elapse makes the member's time to its next report of the window held
// (see part.Learn) d shorter, as if d had passed.
func Elapse(q resilient.QuotaPartition, d time.Duration) {
	q.(*part).confirmNext.Add(-int64(d))
}

// RunLearn runs the script that writes a learned quota once, for the
// partition named name: limit per window, of which remaining is left (-1
// unknown; the reset is not known), as a report of the quota held when
// confirm. It returns whether the script changed the quota, and how long
// it said the member need not report it again.
func RunLearn(s *Store, name string, limit int64, window time.Duration, remaining int, confirm bool) (bool, time.Duration, error) {
	c := 0
	if confirm {
		c = 1
	}
	vals, err := learnScript.Run(s.ctx, s.rdb, []string{s.StateKey(name)},
		limit, window.Microseconds(), remaining, -1, paceShare, burstFrac,
		s.channel, budgetID(name), stateTTL.Milliseconds(), s.instance, c, maxWindow.Microseconds(), maxWindow.Microseconds()).Slice()
	if err != nil {
		return false, 0, err
	}
	changed, ok1 := toInt(vals, 0)
	next, ok2 := toInt(vals, 1)
	if !ok1 || !ok2 {
		return false, 0, errBadReply
	}
	return changed == 1, time.Duration(next) * time.Microsecond, nil
}

// PauseHash is the SHA-1 of the script that writes a pause.
var PauseHash = pauseScript.Hash()

// ResetHash is the SHA-1 of the script that resets a partition.
var ResetHash = resetScript.Hash()

// LoadScripts loads the Store's scripts into the script cache of rdb's
// Redis, so that a test's first EVALSHA of one finds it.
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, sc := range []*redis.Script{leaseScript, learnScript, pauseScript, resetScript, heartbeatScript, budgetScript} {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// LastReset returns Redis's time (µs) of the latest reset the partition q
// applied, told by the fleet's channel or read by a resync, or found in the
// state when it first read it; 0 for none.
func LastReset(q resilient.QuotaPartition) int64 {
	p := q.(*part)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resetAt
}

// BudgetsHeld returns the number of retry budgets the Store holds.
func (s *Store) BudgetsHeld() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.budgets)
}

// MaxPartitions is the most partitions, and the most retry budgets, a
// Store holds.
const MaxPartitions = maxPartitions

// Refilling reports whether the refiller of the partition q runs.
func Refilling(q resilient.QuotaPartition) bool { return q.(*part).running.Load() }

// PartitionsHeld returns the number of partitions the Store holds.
func (s *Store) PartitionsHeld() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.parts)
}

// HoldsPartition reports whether the Store's table holds the partition
// named name: it was not dropped to make room, or was taken back since.
func (s *Store) HoldsPartition(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[name] != nil
}

// PartitionNames returns the names of the partitions the Store's table
// holds.
func (s *Store) PartitionNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.parts))
	for name := range s.parts {
		names = append(names, name)
	}
	return names
}

// DroppedHeld returns the number of partitions, and of retry budgets,
// that the Store dropped to make room and still reaches, until they are
// collected.
func (s *Store) DroppedHeld() (parts, budgets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.droppedParts), len(s.droppedBudgets)
}

// Broken reports whether b's last sync failed on its key (another type).
func Broken(b resilient.SharedBudget) bool { return b.(*budget).broken.Load() }

// View returns the member's view of the retry budget b, in tokens.
func View(b resilient.SharedBudget) float64 { return float64(b.(*budget).tokens.Load()) / budgetUnit }

// PartsPerToken is a token in the finest amount a budget counts (a part of
// its unit), as Exact counts.
const PartsPerToken = budgetUnit * partsPerUnit

// Exact returns what the member holds of the retry budget b, exactly: its
// view and the parts of a unit it carries, in 1/PartsPerToken of a token.
func Exact(b resilient.SharedBudget) int64 {
	bg := b.(*budget)
	return bg.tokens.Load()*partsPerUnit + bg.part.Load()
}

// Unheard moves the times the member last knew the quota of the partition
// q announced (its own Learn, if any, or the fleet's word), and the time
// it last had one to write, back to d ago, unless they are older: as if d
// had passed since. (The latter is never later than its own Learn's: a
// quota forgotten as no longer announced, announced again, is no flapping
// server's, and is written at once; see Learn.)
func Unheard(q resilient.QuotaPartition, d time.Duration) {
	p := q.(*part)
	t := p.s.now() - int64(d)
	for _, v := range []*atomic.Int64{&p.heard, &p.fresh, &p.learnedAt} {
		for {
			h := v.Load()
			if h <= t || v.CompareAndSwap(h, t) {
				break
			}
		}
	}
}

// DryUntil returns how long the fleet's bucket holds no token for q's
// member, as its last lease call said; 0 or less for none.
func DryUntil(q resilient.QuotaPartition) time.Duration {
	p := q.(*part)
	return time.Duration(p.dryUntil.Load() - p.s.now())
}

// Calling reports whether a Redis call of the partition q is in
// progress (see part.call).
func Calling(q resilient.QuotaPartition) bool { return q.(*part).callStart.Load() != 0 }

// Subscribed reports whether Redis confirmed the Store's subscription to
// the fleet's channel.
func (s *Store) Subscribed() bool {
	select {
	case <-s.subscribed:
		return true
	default:
		return false
	}
}

// StateRead reports whether q's state was read from Redis (see
// part.TakeBefore: until then, an attempt that finds no quota waits).
func StateRead(q resilient.QuotaPartition) bool { return q.(*part).read.Load() }

// Unused moves the time the member last used the retry budget b back by
// d, as if it had not used it for that long.
func Unused(b resilient.SharedBudget, d time.Duration) { b.(*budget).used.Add(-int64(d)) }

// Held returns the tokens of the leases the partition q holds, neither
// taken nor expired.
func Held(q resilient.QuotaPartition) int64 {
	p := q.(*part)
	t := p.s.now()
	var n int64
	for _, l := range []*lease{p.cur.Load(), p.next.Load()} {
		if l != nil {
			n += max(l.left(t), 0)
		}
	}
	return n
}

// QuietPartition returns the partition named name of s, knowing the
// quota limit per window, made without starting its refiller: the test
// makes its Redis calls itself (Lease, GiveBackNow), and Close writes
// what it left, as for any partition.
func (s *Store) QuietPartition(name string, limit int64, window time.Duration) resilient.QuotaPartition {
	s.mu.Lock()
	s.made++
	p := newPart(s, name, budgetID(name), s.totalField("g", s.made))
	s.parts[name] = p
	s.byID[p.id] = p
	s.mu.Unlock()
	p.known(limit, window)
	return p
}

// Hush keeps the refiller of the partition q from starting, as if one
// ran: the test makes the partition's Redis calls itself (Lease), and its
// Takes start none.
func Hush(q resilient.QuotaPartition) { q.(*part).running.Store(true) }

// Lease makes one lease call of the partition q, as its refiller does.
func Lease(q resilient.QuotaPartition) error {
	p := q.(*part)
	_, err := p.lease(p.s.now())
	return err
}

// GiveBackNow gives back n tokens of the partition q in one call, as its
// refiller does when the partition goes idle.
func GiveBackNow(q resilient.QuotaPartition, n int64) error {
	p := q.(*part)
	p.callMu.Lock()
	defer p.callMu.Unlock()
	return p.giveBack(p.s.ctx, p.gen.Load(), n, p.s.now())
}
