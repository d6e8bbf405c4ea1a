package redisquota_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// heldScript is a go-redis hook that holds the first call of the script
// whose hash is hash until its context ends, as a Redis slow to answer
// would, and fails it without running it; it lets the others through.
type heldScript struct {
	hash string
	done atomic.Bool
	held chan struct{} // closed once the call is held
}

func (h *heldScript) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *heldScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) < 2 || a[1] != h.hash || !h.done.CompareAndSwap(false, true) {
			return next(ctx, cmd)
		}
		close(h.held)
		<-ctx.Done()
		cmd.SetErr(ctx.Err())
		return ctx.Err()
	}
}
func (h *heldScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestClosePartitionWrites proves that Close writes what a partition held
// for its refiller to write when Close stopped it: a pause the member
// learned (a 429) just before Close, and a quota it learned, reach Redis,
// and a second member that then reads the partition sees them. (The
// refiller's calls ran under the Store's context, which Close cancels:
// the pause was lost, and the other members kept sending into the 429s
// the closed member had learned of.)
func TestClosePartitionWrites(t *testing.T) {
	const name = "api.example.com"
	for _, tc := range []struct {
		what  string
		hash  string
		learn func(q resilient.QuotaPartition)
		check func(t *testing.T, q resilient.QuotaPartition)
	}{
		{"pause", redisquota.PauseHash,
			func(q resilient.QuotaPartition) { q.Pause(time.Now().Add(30 * time.Second)) },
			func(t *testing.T, q resilient.QuotaPartition) {
				if u := q.PauseUntil(); time.Until(u) < 20*time.Second {
					t.Errorf("the second member's PauseUntil() = %v from now, want the closed member's pause, about 30s", time.Until(u).Round(time.Millisecond))
				}
			}},
		{"quota", redisquota.LearnHash,
			func(q resilient.QuotaPartition) {
				q.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 100, Reset: time.Now().Add(time.Minute)}, time.Minute)
			},
			func(t *testing.T, q resilient.QuotaPartition) {
				if limit, window := redisquota.Known(q); limit != 100 || window != time.Minute {
					t.Errorf("the second member knows the quota %d per %v, want the closed member's, 100 per 1m0s", limit, window)
				}
			}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			addr := redisAddr()
			prefix := testPrefix(t, addr)
			h := &heldScript{hash: tc.hash, held: make(chan struct{})}
			a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithTimeout(time.Second))
			t.Cleanup(func() { a.Close() })
			qa := a.Partition(name)
			waitFor(t, "the first member's read of the state", func() bool { return redisquota.StateRead(qa) })
			tc.learn(qa)
			<-h.held // the refiller's write, which Redis is slow to answer
			if err := a.Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			b := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			t.Cleanup(func() { b.Close() })
			qb := b.Partition(name)
			waitFor(t, "the second member's read of the state", func() bool { return redisquota.StateRead(qb) })
			tc.check(t, qb)
		})
	}
}

// TestClosePartitionWritesRedisDown proves that Close says so when a
// partition's writes fail at Close, and returns within its bound.
func TestClosePartitionWritesRedisDown(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &failedScripts{hash: redisquota.PauseHash}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithTimeout(100*time.Millisecond))
	t.Cleanup(func() { a.Close() })
	qa := a.Partition("api.example.com")
	waitFor(t, "the state's read", func() bool { return redisquota.StateRead(qa) })
	qa.Pause(time.Now().Add(30 * time.Second))
	waitFor(t, "a failed write of the pause", func() bool { return h.calls.Load() > 0 })
	err := a.Close()
	if err == nil || !strings.Contains(err.Error(), "redisquota: Close: ") || !strings.Contains(err.Error(), "Redis gone") {
		t.Errorf("Close() = %v, want the pause's write's error", err)
	}
}

// failedScripts is a go-redis hook that fails at once every call of the
// script whose hash is hash, and every pipeline that carries one, as a
// Redis gone would.
type failedScripts struct {
	hash  string
	calls atomic.Int64
}

func (h *failedScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failedScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) < 2 || a[1] != h.hash {
			return next(ctx, cmd)
		}
		h.calls.Add(1)
		err := errors.New("redisquota test: Redis gone")
		cmd.SetErr(err)
		return err
	}
}
func (h *failedScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if a := c.Args(); len(a) > 1 && a[1] == h.hash {
				h.calls.Add(1)
				err := errors.New("redisquota test: Redis gone")
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// TestCloseLeavesWhenSyncSpendsBound proves that the member leaves the
// heartbeats' count at Close even when the last sync of the budgets spends
// Close's whole bound (Redis slow to answer it): the leave has a share of
// the bound of its own. (It ran after the sync under the same bound, with
// none of it left: the other members counted the closed one for three
// more heartbeats.)
func TestCloseLeavesWhenSyncSpendsBound(t *testing.T) {
	h := &heldSync{held: make(chan struct{})}
	s, rdb, b := closeStore(t, h, redisquota.WithBudgetSync(time.Hour), redisquota.WithTimeout(200*time.Millisecond))
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	waitFor(t, "the member's heartbeat", func() bool { return s.Members() > 0 })
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	h.armed.Store(true) // Close's last sync
	s.Close()
	if _, err := rdb.ZScore(context.Background(), s.MembersKey(), s.MemberID()).Result(); err != redis.Nil {
		t.Errorf("the member's heartbeat after Close: ZSCORE error %v, want redis.Nil (the member left)", err)
	}
}

// TestCloseGivesBackTokens proves that Close gives back the tokens of the
// leases a pause dropped just before it: the fleet's bucket gets them
// back, as the refiller's next call would have given them. (They were
// lost with the refiller's calls, which Close canceled.)
func TestCloseGivesBackTokens(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &heldScript{hash: redisquota.PauseHash, held: make(chan struct{})}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithTimeout(time.Second))
	t.Cleanup(func() { a.Close() })
	q := a.Partition("api.example.com")
	q.Learn(resilient.RateLimitInfo{Limit: 6000, Remaining: 6000, Reset: time.Now().Add(time.Minute)}, time.Minute)
	waitFor(t, "a lease", func() bool { return a.Stats().Tokens > 0 })
	q.Pause(time.Now().Add(30 * time.Second)) // drops the lease, whose tokens are to give back
	<-h.held
	if err := a.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if st := a.Stats(); st.Returned == 0 {
		t.Errorf("Stats().Returned after Close = 0, want the dropped lease's tokens (%d granted)", st.Tokens)
	}
}

// TestCloseWritesPausesInOrder proves that Close writes the pauses its
// partitions had left to write in the order of their Pauses, as the
// refillers would have (a global 429 pauses the host's global limit
// last): the fleet's channel tells them in that order.
func TestCloseWritesPausesInOrder(t *testing.T) {
	closePausesInOrder(t)
}

// closePausesInOrder pauses three partitions of a Store whose client has
// hooks beside one that holds the first pause's write, closes the Store
// and checks that the fleet's channel tells the pauses in the order of
// their Pauses (see TestCloseWritesPausesInOrder).
func closePausesInOrder(t *testing.T, hooks ...redis.Hook) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sub := newRedis(t, addr).Subscribe(context.Background(), prefix+":events")
	t.Cleanup(func() { sub.Close() })
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	h := &heldScript{hash: redisquota.PauseHash, held: make(chan struct{})}
	a := redisquota.New(newRedis(t, addr, append([]redis.Hook{h}, hooks...)...), redisquota.WithPrefix(prefix), redisquota.WithTimeout(time.Second))
	t.Cleanup(func() { a.Close() })
	names := []string{"route-1", "route-2", "global"}
	var qs []resilient.QuotaPartition
	for _, n := range names {
		q := a.Partition(n)
		waitFor(t, "the state's read", func() bool { return redisquota.StateRead(q) })
		qs = append(qs, q)
	}
	for _, q := range qs {
		q.Pause(time.Now().Add(30 * time.Second))
	}
	<-h.held // the first pause's write; the others wait for it
	if err := a.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	for _, n := range names {
		key := a.StateKey(n)
		id := key[strings.Index(key, "{")+1 : len(key)-1]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := sub.ReceiveMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the pause of %s: %v", n, err)
		}
		if f := strings.Fields(m.Payload); len(f) < 2 || f[0] != "p" || f[1] != id {
			t.Errorf("message %q, want the pause of %s (p %s)", m.Payload, n, id)
		}
	}
}
