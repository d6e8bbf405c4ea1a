package redisquota

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

// SyncBudget runs the script that syncs a retry budget once, as member,
// with the net change cum in all and delta since the last sync, in
// thousandths of a token; it returns the balance.
func SyncBudget(s *Store, key, member string, cum, delta, burst int64) (int64, error) {
	return budgetScript.Run(s.ctx, s.rdb, []string{key}, "m:"+member, cum, delta, burst, stateTTL.Milliseconds(), s.channel, "test", member).Int64()
}

// BudgetsLocal reports whether the Store's budgets are the member's alone.
func (s *Store) BudgetsLocal() bool { return s.budgetLocal() }
