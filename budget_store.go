package resilient

// This file holds the retry budget's hook for a fleet: a host's budget
// shared with other Transports, in this process or in others (package
// redisquota keeps it in Redis), found on the QuotaStore by type
// assertion. budget.go calls it when it creates a host's budget, for each
// answer of the host and for each retry.

// A BudgetStore shares the retry budgets of hosts (see RetryBudget) between
// the members of a fleet, as a QuotaStore shares the rate limiter's
// quotas. It is an optional interface of a QuotaStore: when the store given
// to WithQuotaStore implements it, and the retry budget is on, each host's
// budget is the fleet's: the answers of every member refill it and the
// retries of every member spend it, so that an outage costs the fleet
// about one Burst of retries, not one per member. Without it (the default,
// and with a store that does not implement it), each Transport keeps its
// hosts' budgets in memory, for itself alone.
//
// A BudgetStore must be safe for concurrent use. Budget is called once when
// a Transport first needs the budget of a host, with the budget's name (the
// key of the address its requests are sent to: "scheme://host:port" of
// their URL, whatever virtual host their Host header names; or what
// BreakerSettings.Key returns) and the Transport's RetryBudget, its zero fields set to their
// defaults, while the Transport holds the lock of its budget table: it must
// return at once, without I/O, and never nil. The budget starts full
// (b.Burst), unless the fleet's holds less, which the store loads in the
// background. The Transport keeps the SharedBudget as long as it holds the
// host's budget, and may ask again after dropping it from its full table
// (see RetryBudget); a store should return the same state for the same
// name while it holds it. The
// members of a fleet should use the same RetryBudget; each caps the
// balance at its own Burst (redisquota's does so at every sync: a member
// with a smaller Burst brings a larger balance down to it, the safe way,
// for a balance above every Burst may be no member's).
type BudgetStore interface {
	Budget(name string, b RetryBudget) SharedBudget
}

// A SharedBudget is one host's retry budget shared by every member of a
// fleet, in tokens: one token pays for one retry.
//
// Its methods are called concurrently, on the callers' goroutines: none may
// block, wait for I/O or call back into the Transport. Deposit is called
// with every answer of the host, and must cost no lock shared with the
// other requests (an atomic operation at most; none that writes when the
// budget is full, the steady state of a healthy host); Withdraw is called
// for each retry and each hedge. A store does its I/O in the background,
// in a bounded number of goroutines (not one per request), and answers
// from what it holds: a member's view of the fleet's budget, which it
// syncs.
//
// A store's failure (its backend slow or down) is never an error of the
// Transport: a budget whose backend does not answer falls back, within a
// bound the store documents, to the member's local budget alone (what it
// holds, refilled by its own answers and spent by its own retries, as
// without a store), and resumes sharing when the backend answers again.
type SharedBudget interface {
	// Deposit credits tokens (the budget's Ratio) for an answer of the
	// host, up to the budget's Burst; or what Withdraw took (1 token, or
	// the budget's ThrottledCost), given back for a retry or a hedged
	// copy that was never sent, unless the budget is a
	// SharedBudgetRefunder, whose Refund is called for that instead.
	Deposit(tokens float64)

	// Withdraw spends tokens for a retry (1, or the budget's
	// ThrottledCost for a retry the server asked for) and reports whether
	// the budget held them; without, nothing is spent and the retry is not
	// sent.
	Withdraw(tokens float64) bool
}

// A SharedBudgetReader is a SharedBudget that tells what it holds: an
// optional interface, found by type assertion, that HostState reads (see
// HostState.RetryBudget; without it, a shared budget reads -1).
type SharedBudgetReader interface {
	SharedBudget

	// Tokens returns what the budget holds, in tokens, as the next
	// Withdraw finds it: a member's view of the fleet's budget. It is
	// called on the caller's goroutine of HostState, and may not block.
	Tokens() float64
}

// A SharedBudgetRefunder is a SharedBudget that tells a give-back from an
// answer's deposit: an optional interface, found by type assertion when a
// retry or a hedged copy that Withdraw paid for is not sent after all.
// The Transport then calls Refund with what Withdraw took, in place of
// Deposit, so that a store may give back no more than its fleet's balance
// was charged for the withdrawal (a balance kept at zero, for one, was
// charged nothing).
type SharedBudgetRefunder interface {
	SharedBudget

	// Refund gives back tokens that Withdraw took (1, or the budget's
	// ThrottledCost) for a retry or a hedged copy that was never sent,
	// up to the budget's Burst. It is called on the caller's goroutine,
	// and may not block.
	Refund(tokens float64)
}

// shareThrough makes the budgets of s the fleet's, through q, when q
// implements BudgetStore.
func (s *budgetSet) shareThrough(q QuotaStore) {
	bs, ok := q.(BudgetStore)
	if !ok {
		return
	}
	s.store = bs
	s.settings = RetryBudget{
		Ratio:         float64(s.ratio) / budgetUnit,
		Burst:         float64(s.burst) / budgetUnit,
		ThrottledCost: float64(s.throttled) / budgetUnit,
	}
}

// sharedBudget returns the fleet's budget of the host of the canonical key
// k, a custom key when custom says so (see breakerName), or nil without a
// store. s.mu is held.
func (s *budgetSet) sharedBudget(k breakerKey, custom bool) SharedBudget {
	if s.store == nil {
		return nil
	}
	return s.store.Budget(breakerName(k, custom), s.settings)
}

// depositShared credits an answer of the host to the fleet's budget.
func (s *budgetSet) depositShared(b *hostBudget) {
	b.shared.Deposit(s.settings.Ratio)
}

// withdrawShared spends a retry's cost from the fleet's budget, and reports
// whether it held it.
func (s *budgetSet) withdrawShared(b *hostBudget, throttled bool) bool {
	if throttled {
		return b.shared.Withdraw(s.settings.ThrottledCost)
	}
	return b.shared.Withdraw(1)
}

// giveBackShared gives back to the fleet's budget what withdrawShared took
// for a retry that was never sent: through Refund when the budget is a
// SharedBudgetRefunder, else as a Deposit.
func (s *budgetSet) giveBackShared(b *hostBudget, throttled bool) {
	cost := 1.0
	if throttled {
		cost = s.settings.ThrottledCost
	}
	if r, ok := b.shared.(SharedBudgetRefunder); ok {
		r.Refund(cost)
		return
	}
	b.shared.Deposit(cost)
}
