package redisquota

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// This file holds the retry budgets the Store shares (resilient.BudgetStore):
// each member answers Deposit and Withdraw from its view of the fleet's
// balance, with atomic operations only, and one goroutine of the Store
// syncs the views with Redis in the background.

// budgetUnit is a token, in the fixed-point units of a budget, in memory and
// in Redis. The core's own budget counts millionths: what a deposit or a
// withdrawal holds finer than a unit is carried in parts (see whole and
// Withdraw), not lost.
const budgetUnit = 1000

// budget is one host's retry budget in one member: its view of the fleet's
// balance, in budgetUnit. The view is the balance Redis returned at the
// last sync (synced) plus the member's deposits and withdrawals since, so
// the member's net change to send with the next sync is tokens − synced.
type budget struct {
	s     *Store
	name  string
	id    string // in the budget's key and the fleet's messages
	key   string // the budget's Redis key
	fkey  string // the sorted set of the budget's running-total fields, by last sync
	field string // the budget's running-total field in Redis: b:<member>:<instance>:<n>
	burst int64

	tokens atomic.Int64 // the view; at most burst
	synced atomic.Int64 // the balance as of the last sync
	want   atomic.Bool  // a sync is wanted at the next tick: the budget is new, a retry was refused, or the fleet started spending it
	kicked atomic.Bool  // a sync was asked for at once since the last one
	broken atomic.Bool  // the last sync failed on the budget's key itself (another type): the budget is the member's alone
	part   atomic.Int64 // the parts of a unit the member holds beyond the view, in partsPerUnit, below one unit: deposits' not yet credited, withdrawals' rests (see whole, Withdraw)
	given  atomic.Int64 // units the member gave back, in all (see Refund), sent with each sync: the script pays what the member owes with them
	drop   atomic.Int64 // units of those the view's clamp at the burst dropped, in all: each sync sends those new as a change (see syncBatch)
	used   atomic.Int64 // local ns of the member's last withdrawal, or deposit into a view not full, or of the last sync that found the fleet spending the balance (see regain)

	// Owned by the syncer.
	cum        int64     // the net change the budget has had applied in Redis, in all, under field
	dropSent   int64     // the units of drop that cum counts
	givenSent  int64     // the units of given the last sync that answered sent
	seq        int64     // the syncs sent, which number them (see budgetScript)
	lastActive time.Time // the last tick that found the budget changed or wanted
}

func budgetID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

func budgetKey(prefix, id string) string { return prefix + ":{" + id + "}:budget" }

// maxUnits bounds an amount in budgetUnit: a burst, a deposit. It is exact
// in a float64, as Redis's Lua keeps the balance, and a view plus a
// deposit stays far from overflowing.
const maxUnits = 1 << 53

// units returns tokens in budgetUnit, rounded, and saturated: NaN and
// amounts below zero are nothing, +Inf and amounts above maxUnits are
// maxUnits (converted as they were, they were undefined in Go, a negative
// number on amd64, that a withdrawal added and a deposit took).
func units(tokens float64) int64 {
	u := tokens * budgetUnit
	switch {
	case !(u > 0):
		return 0
	case !(u < maxUnits):
		return maxUnits
	}
	return int64(math.Round(u))
}

// partsPerUnit is the resolution of the parts of a unit that deposits
// and withdrawals carry over (see budget.whole and budget.Withdraw).
const partsPerUnit = 1_000_000

// maxFine bounds, in budgetUnit, the amounts whose parts of a unit are
// counted: in partsPerUnit they stay within an int64; above it, no part of
// a unit matters.
const maxFine = 1 << 40

// fine returns tokens, at least zero and below maxFine units, in whole
// units and the part of a unit left over, in partsPerUnit. A withdrawal
// and its give-back convert the same tokens to the same parts.
func fine(tokens float64) (whole, part int64) {
	p := int64(math.Round(tokens * budgetUnit * partsPerUnit))
	return p / partsPerUnit, p % partsPerUnit
}

// Budget returns the fleet's retry budget named name (a host's breaker
// key) with the settings b. It implements resilient.BudgetStore: it returns
// at once, starts full, and loads the fleet's balance in the background.
// Several Transports of one Store that ask for the same name share one
// budget, with the settings of the first, for as long as something holds
// it, even after the Store dropped it to make room.
func (s *Store) Budget(name string, b resilient.RetryBudget) resilient.SharedBudget {
	s.mu.Lock()
	if bg := s.budgets[name]; bg != nil {
		s.mu.Unlock()
		return bg
	}
	if len(s.budgets) >= maxPartitions {
		s.dropIdleBudgetsLocked(time.Now())
	}
	id := budgetID(name)
	if bg := takeDropped(s.droppedBudgets, id); bg != nil {
		// Still held, and still the fleet's: the Store holds it again.
		s.budgets[name] = bg
		s.budgetByID[id] = bg
		s.mu.Unlock()
		return bg
	}
	key := budgetKey(s.cfg.prefix, id)
	s.made++
	bg := &budget{s: s, name: name, id: id, key: key, fkey: key + ":fields", field: s.totalField("b", s.made), burst: units(b.Burst)}
	bg.tokens.Store(bg.burst)
	bg.synced.Store(bg.burst)
	bg.want.Store(true)
	bg.used.Store(s.now())
	s.budgets[name] = bg
	s.budgetByID[id] = bg
	start := !s.budgetsRunning
	s.budgetsRunning = true
	s.mu.Unlock()
	if start {
		s.start(s.syncBudgets)
	}
	s.kickBudgets()
	return bg
}

// dropIdleBudgetsLocked forgets budgets to make room: those not in use for
// idleExit first; then, while that leaves the Store full (budgets waiting
// for a sync that does not come while Redis is down, or more hosts new
// within idleExit than it holds), those whose view holds no change of the
// member's to send; then any, a change not sent being the member's alone,
// as while Redis is down. Those still held by a Transport keep syncing
// (see forgetBudgetLocked). s.mu is held.
func (s *Store) dropIdleBudgetsLocked(now time.Time) {
	for pass := range 3 {
		for _, bg := range s.budgets {
			if len(s.budgets) < maxPartitions*3/4 {
				return
			}
			unsent := bg.tokens.Load() != bg.synced.Load()
			idle := now.Sub(bg.lastActive) >= idleExit && !bg.want.Load()
			if pass == 2 || !unsent && (pass == 1 || idle) {
				s.forgetBudgetLocked(bg)
			}
		}
	}
}

// forgetBudgetLocked drops the budget b from the Store's table, keeping a
// weak pointer to it until it is collected (held.go): while a Transport
// holds it, the syncer syncs it and the fleet's messages reach it, and the
// next Budget of its name returns it; once collected, that makes a new
// one, with a field of its own in Redis. s.mu is held.
func (s *Store) forgetBudgetLocked(b *budget) {
	delete(s.budgets, b.name)
	delete(s.budgetByID, b.id)
	keepDropped(s, s.droppedBudgets, b.id, b)
}

// Deposit implements resilient.SharedBudget: it credits tokens to the
// member's view, up to the burst. A full view, the steady state of a
// healthy host, costs an atomic load and no write: the fleet's balance was
// full at the last sync, and the fleet's channel tells the member when
// another starts spending it.
//
// A deposit of NaN or of less than zero credits nothing; one of +Inf, or
// of more than the burst, fills the view.
func (b *budget) Deposit(tokens float64) {
	if b.tokens.Load() >= b.burst || !(tokens >= 0) {
		return
	}
	b.regain(b.s.now())
	b.credit(b.whole(tokens))
}

// Refund implements resilient.SharedBudgetRefunder: it gives back tokens
// that Withdraw took, for a retry or a hedged copy never sent, as Deposit
// credits them, and counts what it credited among the member's
// give-backs, which each sync sends (a running total, applied once). A
// sync that found the fleet's balance short of the member's withdrawals
// kept it at zero, charging the rest to nobody, and a give-back of one of
// those credited the fleet a token that no answer paid for
// (TestBudgetClampedWithdrawGivenBack): the script keeps what the member
// owes (at most a Burst), and its give-backs, whichever withdrawals they
// give back, pay that before they credit the balance; answers' deposits
// pay nothing of it, so that a withdrawal beyond the balance that was sent
// stays the overspend the package's doc bounds (see Retry budgets). Kept
// in Redis, not by the member, what is owed is known to a give-back
// during the sync that finds it, survives a sync whose reply was lost,
// and goes with the balance once it is full again or gone
// (TestBudgetOwedReplyLost, TestBudgetOwedGivenBackDuringSync,
// TestBudgetOwedForgottenWhenRefilled). The view does not know what the
// member owes: what of a give-back its clamp at the burst drops (a view
// full, or filled by it) the next sync sends all the same, as a change the
// script clamps, so that the give-back pays the debt once, not from the
// units the view kept (TestBudgetOwedGiveBackFillsView).
func (b *budget) Refund(tokens float64) {
	if !(tokens >= 0) {
		return
	}
	full := b.tokens.Load() >= b.burst
	if !full {
		b.regain(b.s.now())
	}
	if u := b.whole(tokens); u > 0 {
		var a int64
		if !full {
			a = b.add(u)
		}
		if a < u {
			b.drop.Add(u - a)
			b.want.Store(true)
		}
		b.given.Add(u)
	}
}

// whole returns the whole units of a deposit of tokens (at least zero),
// and carries the part of a unit left over to the next deposits: a Ratio
// finer than a unit (a retry per 2,000 answers) deposits what it says over
// many answers, where rounding each deposit made it nothing, or twice
// itself; and the give-back of a withdrawal finer than a unit restores
// exactly what it took (see Withdraw). A deposit of whole units (a Ratio
// of 0.2, a retry's 1) leaves the carried parts alone.
func (b *budget) whole(tokens float64) int64 {
	if !(tokens*budgetUnit < maxFine) {
		return units(tokens) // more than the burst may hold: no part matters
	}
	w, p := fine(tokens)
	if p == 0 {
		return w
	}
	return w + b.carry(p)
}

// carry adds p parts of a unit (below partsPerUnit) to those the budget
// carries, and returns the whole unit they make, if any, which the caller
// credits.
func (b *budget) carry(p int64) int64 {
	for {
		old := b.part.Load()
		sum := old + p
		if b.part.CompareAndSwap(old, sum%partsPerUnit) {
			return sum / partsPerUnit
		}
	}
}

// takePart takes p parts of a unit from those the budget carries, and
// reports whether they held them.
func (b *budget) takePart(p int64) bool {
	for {
		old := b.part.Load()
		if old < p {
			return false
		}
		if b.part.CompareAndSwap(old, old-p) {
			return true
		}
	}
}

// credit adds d units to the view, up to the burst, and reports whether
// the view was not full.
func (b *budget) credit(d int64) bool {
	for t := b.tokens.Load(); t < b.burst; t = b.tokens.Load() {
		if b.tokens.CompareAndSwap(t, min(t+d, b.burst)) {
			return true
		}
	}
	return false
}

// add adds d units to the view, up to the burst, and returns the units
// it added.
func (b *budget) add(d int64) int64 {
	for t := b.tokens.Load(); t < b.burst; t = b.tokens.Load() {
		n := min(t+d, b.burst)
		if b.tokens.CompareAndSwap(t, n) {
			return n - t
		}
	}
	return 0
}

// dropped counts among the view's drops the units over the burst that a
// sync's reply, which found the view changed since the sync read it, took
// from the view: those of the give-backs made meanwhile (the ones counted
// after given and drop, g0 and d0, were read), which the view held. The
// view does not know what the member owes, and a give-back that fills it
// may pay some: dropped, its units no longer reached the balance, whose
// script paid the debt with them all the same, and left the fleet poorer
// by what the give-back paid (TestBudgetOwedGiveBackFillsView). The
// syncer calls it.
func (b *budget) dropped(over, g0, d0 int64) {
	if x := min(over, b.given.Load()-g0-(b.drop.Load()-d0)); x > 0 {
		b.drop.Add(x)
	}
}

// regain records a use of the budget (a withdrawal, or a deposit into a
// view not full) at now, after crediting the view one retry for each
// budgetRefill the member neither withdrew from it nor deposited into it,
// nor found at a sync that the fleet spent from it, up to the burst, as the
// Transport's own budget regains (see resilient.RetryBudget): the first
// failures after a quiet spell are retried as a new host's are, the
// fleet's balance being refilled by what the member deposits. (The view
// of a fleet whose outage spent the budget stayed spent, and the balance
// in Redis too, for as long as no answer refilled it: the rare calls of a
// quiet host were never retried for the day the balance lives, where a
// Transport without a store regains its Burst in a hundred minutes.) A
// host that fails every call costs a retry more per budgetRefill for each
// member that calls it less often than that, as for Transports without a
// store. (Counted from the member's own uses alone, a member whose view
// stayed full, its answers marking nothing, was idle since the budget was
// made: its first failure after an outage spent the balance regained a
// whole burst, and the outage cost a fleet of N members N bursts, not one.
// An answer regains before it deposits, as the Transport's own budget
// does: marked used first, the first answer after a quiet spell lost it.)
func (b *budget) regain(now int64) {
	used := b.used.Load()
	if used >= now || !b.used.CompareAndSwap(used, now) {
		return
	}
	if d := regained(b.burst, now-used); d > 0 {
		b.credit(d)
	}
}

// regained returns the units a budget of burst regains after idle (local
// ns) without a use: one retry per budgetRefill (see regain).
func regained(burst, idle int64) int64 {
	if k := idle / int64(budgetRefill); k > 0 {
		return min(k, burst/budgetUnit+1) * budgetUnit
	}
	return 0
}

// Tokens implements resilient.SharedBudgetReader, for the Transport's
// HostState: it returns the member's view of the fleet's balance, in
// tokens, with what the view regains when next used (see regain), and
// never less than zero (a view the fleet overspent while the budget was
// the member's alone). It changes nothing.
func (b *budget) Tokens() float64 {
	t := b.tokens.Load()
	if t < b.burst {
		t = min(t+regained(b.burst, b.s.now()-b.used.Load()), b.burst)
	}
	return float64(max(t, 0)) / budgetUnit
}

// Withdraw implements resilient.SharedBudget: it spends tokens from the
// member's view, when the view holds them and, while the budget is shared,
// when the member's net spending since the last sync stays within its
// allowance: its share of the balance Redis last returned (the balance
// divided by the fleet's members), at least one token. A member that
// reaches half of it asks for a sync at once.
//
// A withdrawal costs exactly its tokens, so that its give-back (a Deposit
// of the same tokens) restores the budget: its whole units, and its part
// of a unit from the parts the deposits carry (see whole) when they hold
// it, else one unit more, whose rest the budget carries. (It cost a whole
// unit at least, and its give-back credited the part: a ThrottledCost of
// 1e-4 cost ten times itself, and each of its retries refused below the
// budget lost nine tenths of what it took.) A withdrawal of NaN, of less
// than zero or of more than the burst is refused, and spends nothing.
func (b *budget) Withdraw(tokens float64) bool {
	if !(tokens >= 0) || tokens*budgetUnit > float64(b.burst) {
		return false
	}
	b.regain(b.s.now())
	if !(tokens*budgetUnit < maxFine) {
		return b.spend(units(tokens))
	}
	whole, p := fine(tokens)
	switch {
	case p == 0:
		return b.spend(whole)
	case b.takePart(p):
		if b.spend(whole) {
			return true
		}
		b.credit(b.carry(p)) // given back: at most a unit the carried parts made meanwhile
		return false
	case b.spend(whole + 1):
		b.credit(b.carry(partsPerUnit - p))
		return true
	}
	return false
}

// spend spends cost units from the member's view, when it holds them and
// the member's allowance allows (see Withdraw), and reports whether it
// did. Nothing, taken from the parts the budget carries, is not counted
// against the allowance: the fleet's balance does not change.
func (b *budget) spend(cost int64) bool {
	local := b.broken.Load() || b.s.budgetLocal()
	if cost == 0 {
		if local {
			b.s.st.budgetLocal.Add(1)
		}
		return true
	}
	for {
		t := b.tokens.Load()
		if t < cost {
			if !b.want.Load() {
				b.want.Store(true) // learn at the next tick whether the fleet refilled it
			}
			return false
		}
		var spent, allow int64
		if !local {
			synced := b.synced.Load()
			spent, allow = synced-(t-cost), max(budgetUnit, synced/max(b.s.members.Load(), 1))
			if spent > allow {
				b.kick()
				return false
			}
		}
		if b.tokens.CompareAndSwap(t, t-cost) {
			if local {
				b.s.st.budgetLocal.Add(1)
			} else if 2*spent >= allow {
				b.kick()
			}
			return true
		}
	}
}

var (
	_ resilient.BudgetStore          = (*Store)(nil)
	_ resilient.SharedBudgetReader   = (*budget)(nil)
	_ resilient.SharedBudgetRefunder = (*budget)(nil)
	_ resilient.QuotaResetter        = (*part)(nil)
	_ resilient.QuotaWatcher         = (*part)(nil)
	_ resilient.QuotaDeadlineTaker   = (*part)(nil)
)
