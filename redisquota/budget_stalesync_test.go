package redisquota_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// lostSync is a go-redis hook that fails the first sync of the budgets
// after it is armed without sending it, keeping its command's arguments:
// the test sends them later, as a Redis that ran the sync late would.
type lostSync struct {
	armed  atomic.Bool
	failed chan []any // the arguments of the sync failed
}

func (h *lostSync) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *lostSync) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *lostSync) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !isBudgetSync(cmds) || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		err := errors.New("redisquota test: the sync's reply is late")
		for _, c := range cmds {
			c.SetErr(err)
		}
		h.failed <- cmds[0].Args()
		return err
	}
}

// TestBudgetStaleSyncIgnored proves that a sync of a budget that reaches
// Redis after a later sync of the same budget (the earlier one timed out
// on its way, and Redis ran it late) changes nothing: the later one
// carried its change already. (The script applied the difference between
// the two running totals, backwards: the withdrawal made between them
// came back to the fleet until the member's next sync.)
func TestBudgetStaleSyncIgnored(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	h := &lostSync{failed: make(chan []any, 1)}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithBudgetSync(20*time.Millisecond))
	t.Cleanup(func() { s.Close() })
	const name = "https://api.example.com:443"
	b := s.Budget(name, closeBudget)
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	h.armed.Store(true)
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	stale := <-h.failed
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	waitFor(t, "the later sync", func() bool { return fleetBalance(t, rdb, s, name) == 8000 })
	// The balance the stale sync left, as its script returns it: the
	// member's next sync (every 20ms) sets it right again.
	got, err := rdb.Do(context.Background(), stale...).Int64()
	if err != nil {
		t.Fatalf("the stale sync: %v", err)
	}
	if got != 8000 {
		t.Errorf("fleet balance after the stale sync = %v, want %v", got, 8000)
	}
}
