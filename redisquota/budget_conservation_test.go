package redisquota_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// holdGate is a go-redis hook that, armed, holds the next budget sync of
// its client before Redis runs it (before) or after (after), until the
// test releases it.
type holdGate struct {
	before, after atomic.Bool
	held, release chan struct{}
}

func (g *holdGate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *holdGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (g *holdGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !budgetSync(cmds) {
			return next(ctx, cmds)
		}
		if g.before.CompareAndSwap(true, false) {
			g.held <- struct{}{}
			<-g.release
		}
		err := next(ctx, cmds)
		if err == nil && g.after.CompareAndSwap(true, false) {
			g.held <- struct{}{}
			<-g.release
		}
		return err
	}
}

// budgetSync reports whether cmds hold a budget sync.
func budgetSync(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if a := c.Args(); len(a) > 1 && a[1] == redisquota.BudgetHash {
			return true
		}
	}
	return false
}

// conservationMember is one member of the fleet of
// TestBudgetFleetConservation: its Store, its budget, its gate, and the
// withdrawals it has not given back.
type conservationMember struct {
	s    *redisquota.Store
	b    resilient.SharedBudgetRefunder
	gate *holdGate
	out  []float64
}

// TestBudgetFleetConservation proves, for seeded random runs of 3 members
// on one budget (Burst 10, a balance of start), each withdrawing and giving
// back in random order while syncs of theirs are held before or after
// Redis runs them, that once every withdrawal is given back the fleet's
// balance is what it was: a withdrawal and its give-back leave the balance
// as they found it (see the package's doc, Retry budgets), whatever the
// balance kept at zero charged to nobody meanwhile.
func TestBudgetFleetConservation(t *testing.T) {
	for seed := range uint64(30) {
		start := []int64{10000, 10000, 4000}[seed%3]
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if got := conservationRun(t, seed, start); got != start {
				t.Errorf("fleet balance = %v tokens after every withdrawal was given back (seed %d), want %v", float64(got)/1000, seed, float64(start)/1000)
			}
		})
	}
}

// conservationRun runs the fleet of TestBudgetFleetConservation with seed
// from a balance of start (in thousandths of a token), and returns the
// balance once every withdrawal was given back and every member synced.
func conservationRun(t *testing.T, seed uint64, start int64) int64 {
	ctx := context.Background()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	ms := make([]*conservationMember, 3)
	for i := range ms {
		g := &holdGate{held: make(chan struct{}), release: make(chan struct{})}
		s := redisquota.New(newRedis(t, addr, g), redisquota.WithPrefix(prefix), redisquota.WithBudgetSync(10*time.Millisecond))
		t.Cleanup(func() { s.Close() })
		ms[i] = &conservationMember{s: s, gate: g}
	}
	key := ms[0].s.BudgetKey(owedName)
	if err := rdb.HSet(ctx, key, "bal", start).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		m.b = m.s.Budget(owedName, resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}).(resilient.SharedBudgetRefunder)
		waitFor(t, "the budget loaded", func() bool {
			v, s, ok := m.s.BudgetView(owedName)
			return ok && v == s && v == float64(start)/1000 && m.s.Stats().BudgetSyncs > 0
		})
	}
	op := func(m *conservationMember) {
		if len(m.out) > 0 && rnd.IntN(3) == 0 {
			k := rnd.IntN(len(m.out))
			m.b.Refund(m.out[k])
			m.out = append(m.out[:k], m.out[k+1:]...)
			return
		}
		tokens := []float64{0.5, 1, 2, 3}[rnd.IntN(4)]
		if m.b.Withdraw(tokens) {
			m.out = append(m.out, tokens)
		}
	}
	for range 60 {
		m := ms[rnd.IntN(len(ms))]
		if rnd.IntN(3) > 0 {
			op(m)
			continue
		}
		// Hold m's next sync, run ops of any member meanwhile.
		armed := &m.gate.after
		if rnd.IntN(2) == 0 {
			armed = &m.gate.before
		}
		armed.Store(true)
		op(m) // a change to sync
		select {
		case <-m.gate.held:
		case <-time.After(time.Second):
			if armed.CompareAndSwap(true, false) {
				continue // no sync came: nothing to hold
			}
			<-m.gate.held
		}
		for range 1 + rnd.IntN(4) {
			op(ms[rnd.IntN(len(ms))])
			time.Sleep(time.Duration(rnd.IntN(25)) * time.Millisecond) // others sync
		}
		m.gate.release <- struct{}{}
		time.Sleep(time.Duration(rnd.IntN(15)) * time.Millisecond)
	}
	f, _ := rdb.HGetAll(ctx, key).Result()
	t.Logf("before the give-backs: %v", f)
	// The give-backs left, a member at a time, each synced before the
	// next, the member with the most to give back (the likeliest to owe)
	// last.
	slices.SortFunc(ms, func(a, b *conservationMember) int { return cmp.Compare(sum(a.out), sum(b.out)) })
	for _, m := range ms {
		for _, tokens := range m.out {
			m.b.Refund(tokens)
		}
		m.out = nil
		time.Sleep(30 * time.Millisecond)
		f, _ := rdb.HGetAll(ctx, key).Result()
		t.Logf("after the give-backs of %s: %v", m.s.Instance(), f)
	}
	var bal int64
	waitFor(t, "every member synced", func() bool {
		var err error
		bal, err = rdb.HGet(ctx, key, "bal").Int64()
		if err != nil {
			return false
		}
		for _, m := range ms {
			syncs := m.s.Stats().BudgetSyncs
			v, s, _ := m.s.BudgetView(owedName)
			if v != s || v != float64(bal)/1000 {
				return false
			}
			if v < 10 {
				// Wait for a later sync to see the same.
				for m.s.Stats().BudgetSyncs == syncs {
					time.Sleep(time.Millisecond)
				}
				if v2, s2, _ := m.s.BudgetView(owedName); v2 != v || s2 != s {
					return false
				}
			}
		}
		bal2, err := rdb.HGet(ctx, key, "bal").Int64()
		return err == nil && bal2 == bal
	})
	return bal
}

// sum returns the sum of xs.
func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
