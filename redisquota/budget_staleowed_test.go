package redisquota_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// syncGate is a go-redis hook on the budget syncs whose member withdrew
// since its last one (a delta below zero): armed, it holds the next such
// sync before Redis runs it (before) or after (after), until the test
// releases it, or loses its reply (drop), as when the reply is late.
type syncGate struct {
	before, after, drop atomic.Bool
	held, release       chan struct{}
}

func newSyncGate() *syncGate {
	return &syncGate{held: make(chan struct{}), release: make(chan struct{})}
}

func (g *syncGate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *syncGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (g *syncGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !withdrawnSync(cmds) {
			return next(ctx, cmds)
		}
		if g.before.CompareAndSwap(true, false) {
			g.held <- struct{}{}
			<-g.release
		}
		err := next(ctx, cmds)
		if err != nil {
			return err
		}
		if g.after.CompareAndSwap(true, false) {
			g.held <- struct{}{}
			<-g.release
		}
		if g.drop.CompareAndSwap(true, false) {
			for _, c := range cmds {
				c.SetErr(context.DeadlineExceeded)
			}
			return context.DeadlineExceeded
		}
		return nil
	}
}

// withdrawnSync reports whether cmds hold a budget sync whose delta (the
// command's eighth argument: EVALSHA, the hash, 2, the keys, the field,
// cum, delta) is below zero.
func withdrawnSync(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		a := c.Args()
		if len(a) < 8 || a[1] != redisquota.BudgetHash {
			continue
		}
		if d, ok := a[7].(int64); ok && d < 0 {
			return true
		}
	}
	return false
}

// owedBudget is one member's budget of a host (Burst 10) on a prefix of
// the test's own, whose syncs go through a syncGate.
type owedBudget struct {
	s    *redisquota.Store
	b    resilient.SharedBudgetRefunder
	rdb  *redis.Client
	key  string
	gate *syncGate
}

const owedName = "https://api.example.com:443"

func newOwedBudget(t *testing.T) *owedBudget {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	o := &owedBudget{gate: newSyncGate(), rdb: newRedis(t, addr)}
	o.s = redisquota.New(newRedis(t, addr, o.gate), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { o.s.Close() })
	o.b = o.s.Budget(owedName, resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}).(resilient.SharedBudgetRefunder)
	o.key = o.s.BudgetKey(owedName)
	waitFor(t, "the budget loaded", func() bool {
		view, synced, ok := o.s.BudgetView(owedName)
		return ok && view == synced && o.s.Stats().BudgetSyncs > 0
	})
	return o
}

// synced waits for a sync after the call, that leaves the member's view
// as its balance (a sync started after the call, or one that left the view
// full, the syncs' end).
func (o *owedBudget) synced(t *testing.T, what string) float64 {
	t.Helper()
	syncs := o.s.Stats().BudgetSyncs
	var view float64
	waitFor(t, what, func() bool {
		v, s, _ := o.s.BudgetView(owedName)
		view = v
		n := o.s.Stats().BudgetSyncs
		return v == s && (n > syncs+1 || n > syncs && v == 10)
	})
	return view
}

// balance returns the fleet's balance in Redis, in tokens.
func (o *owedBudget) balance(t *testing.T) float64 {
	t.Helper()
	bal, err := o.rdb.HGet(context.Background(), o.key, "bal").Int64()
	if err != nil {
		t.Fatal(err)
	}
	return float64(bal) / 1000
}

// owe makes the member owe a token: the fleet's balance spent by others,
// its retry withdraws one, which the next sync finds the balance short of.
func (o *owedBudget) owe(t *testing.T) {
	t.Helper()
	if err := o.rdb.HSet(context.Background(), o.key, "bal", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !o.b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false from a full view, want true")
	}
	if v := o.synced(t, "the withdrawal synced"); v != 0 {
		t.Fatalf("view = %v after a withdrawal at a balance of 0, want 0", v)
	}
}

// giveBackOne withdraws a token and gives it back, each synced, and
// returns the fleet's balance before and after.
func (o *owedBudget) giveBackOne(t *testing.T) (before, after float64) {
	t.Helper()
	before = o.balance(t)
	if !o.b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	o.synced(t, "the withdrawal synced")
	o.b.Refund(1)
	o.synced(t, "the give-back synced")
	return before, o.balance(t)
}

// TestBudgetOwedForgottenWhenRefilled proves that what a member owes the
// fleet (a withdrawal its balance, at zero, did not pay) is forgotten once
// the balance is full again: refilled by the fleet's answers, or gone from
// Redis (expired after a day unused, flushed) and so full. A full balance
// took every token a give-back of the member credited it for nothing; the
// member, still owing, kept its next give-backs from the fleet (up to a
// Burst of them), and left the balance poorer by each.
func TestBudgetOwedForgottenWhenRefilled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refill func(o *owedBudget) error
	}{
		{"refilled", func(o *owedBudget) error {
			return o.rdb.HSet(context.Background(), o.key, "bal", 10000).Err()
		}},
		{"expired", func(o *owedBudget) error {
			return o.rdb.Del(context.Background(), o.key, o.key+":fields").Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOwedBudget(t)
			o.owe(t)
			if err := tc.refill(o); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the full balance synced", func() bool {
				view, synced, _ := o.s.BudgetView(owedName)
				return view == 10 && synced == 10
			})
			if before, after := o.giveBackOne(t); after != before {
				t.Errorf("fleet balance = %v after a withdrawal from %v given back, want %v", after, before, before)
			}
		})
	}
}

// TestBudgetOwedForgottenWhenFlushed proves the same of a balance Redis
// lost (a restart without persistence, FLUSHALL) whose first sync carries
// withdrawals of the member's: the balance starts full, and what the
// member owed the old one is owed to nobody.
func TestBudgetOwedForgottenWhenFlushed(t *testing.T) {
	o := newOwedBudget(t)
	o.owe(t)
	o.b.Deposit(5)
	if v := o.synced(t, "the deposit synced"); v != 5 {
		t.Fatalf("view = %v after a deposit of 5 into 0, want 5", v)
	}

	// The member withdraws 2; Redis loses the balance before the sync
	// sends them.
	o.gate.before.Store(true)
	for range 2 {
		if !o.b.Withdraw(1) {
			t.Fatal("Withdraw(1) = false, want true")
		}
	}
	<-o.gate.held
	if err := o.rdb.Del(context.Background(), o.key, o.key+":fields").Err(); err != nil {
		t.Fatal(err)
	}
	o.gate.release <- struct{}{}
	o.synced(t, "the withdrawals synced")
	if bal := o.balance(t); bal > 8 {
		t.Fatalf("fleet balance = %v after a flush and 2 withdrawals, want at most 8", bal)
	}
	if before, after := o.giveBackOne(t); after != before {
		t.Errorf("fleet balance = %v after a withdrawal from %v given back, want %v", after, before, before)
	}
}
