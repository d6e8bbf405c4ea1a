package redisquota_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// killer is a go-redis hook that, once armed with a connection id, runs the
// first command (or pipeline) one of whose commands match accepts in one
// MULTI/EXEC, after CLIENT KILL of that connection and PUBSUB NUMSUB of the
// fleet's channel: what the command publishes is published while the
// connection is gone, before its client can reconnect, whatever the
// timing. It records what the kill answered and the subscribers the
// channel had left.
type killer struct {
	admin   *redis.Client
	channel string

	mu    sync.Mutex
	id    int64                 // the connection to kill; 0 while disarmed
	match func(args []any) bool // the call to kill it with
	subs  int64                 // the channel's subscribers once it was killed
	err   error                 // the kill's
	fired chan struct{}
}

// arm arms k to kill the connection id with the first call that match
// accepts, and returns the channel closed once it did.
func (k *killer) arm(id int64, match func(args []any) bool) chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.id, k.match, k.fired = id, match, make(chan struct{})
	return k.fired
}

// take disarms k and returns the connection to kill when one of cmds
// matches, 0 otherwise.
func (k *killer) take(cmds ...redis.Cmder) (int64, chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.id == 0 {
		return 0, nil
	}
	for _, c := range cmds {
		if k.match(c.Args()) {
			id := k.id
			k.id = 0
			return id, k.fired
		}
	}
	return 0, nil
}

func (k *killer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *killer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if id, fired := k.take(cmd); id != 0 {
			return k.run(ctx, id, fired, cmd)
		}
		return next(ctx, cmd)
	}
}

func (k *killer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if id, fired := k.take(cmds...); id != 0 {
			return k.run(ctx, id, fired, cmds...)
		}
		return next(ctx, cmds)
	}
}

// run runs cmds in one transaction after the kill of the connection id.
func (k *killer) run(ctx context.Context, id int64, fired chan struct{}, cmds ...redis.Cmder) error {
	var kill *redis.Cmd
	var numsub *redis.MapStringIntCmd
	k.admin.TxPipelined(ctx, func(p redis.Pipeliner) error {
		kill = p.Do(ctx, "CLIENT", "KILL", "ID", id)
		numsub = p.PubSubNumSub(ctx, k.channel)
		for _, c := range cmds {
			p.Process(ctx, c)
		}
		return nil
	})
	k.mu.Lock()
	k.err, k.subs = kill.Err(), numsub.Val()[k.channel]
	k.mu.Unlock()
	close(fired)
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// doneCounter is a go-redis hook that counts the calls of each script that
// Redis answered, and the pipelines of lease calls (a resync's reads) and
// their commands, and holds back, while their gate is closed, the
// client's new connections (gate dial), its lease calls (gate lease), the
// replies of its lease calls, sent (gate reply), or its pipelines of lease
// calls (gate resync).
type doneCounter struct {
	mu          sync.Mutex
	n, ran      map[string]int           // calls answered; lease calls run in Redis, their reply maybe held back
	pipes, cmds int                      // pipelines of lease calls, and their commands
	gates       map[string]chan struct{} // closed gates, by name
}

// hold closes the gate named name until release.
func (c *doneCounter) hold(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gates == nil {
		c.gates = make(map[string]chan struct{})
	}
	if c.gates[name] == nil {
		c.gates[name] = make(chan struct{})
	}
}

// release opens the gate named name, or all of them for "".
func (c *doneCounter) release(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, g := range c.gates {
		if name == "" || n == name {
			close(g)
			delete(c.gates, n)
		}
	}
}

// pass waits while the gate named name is closed.
func (c *doneCounter) pass(ctx context.Context, name string) error {
	c.mu.Lock()
	g := c.gates[name]
	c.mu.Unlock()
	if g == nil {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *doneCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := c.pass(ctx, "dial"); err != nil {
			return nil, err
		}
		return next(ctx, network, addr)
	}
}

func (c *doneCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		lease := evalsha(redisquota.LeaseHash)(cmd.Args())
		if lease {
			if err := c.pass(ctx, "lease"); err != nil {
				return err
			}
		}
		err := next(ctx, cmd)
		if lease {
			c.mu.Lock()
			if c.ran == nil {
				c.ran = make(map[string]int)
			}
			c.ran[redisquota.LeaseHash]++
			c.mu.Unlock()
			if err := c.pass(ctx, "reply"); err != nil {
				return err
			}
		}
		if a := cmd.Args(); err == nil && len(a) > 1 && strings.EqualFold(a[0].(string), "evalsha") {
			c.mu.Lock()
			if c.n == nil {
				c.n = make(map[string]int)
			}
			c.n[a[1].(string)]++
			c.mu.Unlock()
		}
		return err
	}
}

func (c *doneCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && evalsha(redisquota.LeaseHash)(cmds[0].Args()) {
			if err := c.pass(ctx, "resync"); err != nil {
				return err
			}
			c.mu.Lock()
			c.pipes++
			c.cmds += len(cmds)
			c.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

func (c *doneCounter) leasePipelines() (pipes, cmds int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pipes, c.cmds
}

// leasesRun returns the lease calls that ran in Redis, whether their
// reply was held back or not.
func (c *doneCounter) leasesRun() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ran[redisquota.LeaseHash]
}

func (c *doneCounter) script(hash string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[hash]
}

// evalsha returns a matcher of the EVALSHA of the script hash.
func evalsha(hash string) func(args []any) bool {
	return func(a []any) bool {
		name, _ := a[0].(string)
		return len(a) > 1 && strings.EqualFold(name, "evalsha") && a[1] == hash
	}
}

// lossFleet is two members of a fleet, A and B, with what it takes to lose
// a message for B: B's client has a name of its own, by which the test
// finds its pub/sub connection, and A's client runs the call the test arms
// (see killer) together with the kill of that connection.
type lossFleet struct {
	a, b    *redisquota.Store
	admin   *redis.Client
	nameB   string
	channel string
	kill    *killer
	doneB   *doneCounter
}

func newLossFleet(t *testing.T) *lossFleet {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	f := &lossFleet{admin: newRedis(t, addr), channel: prefix + ":events", doneB: new(doneCounter)}
	if err := redisquota.LoadScripts(context.Background(), f.admin); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	f.nameB = "rqtest-b-" + hex.EncodeToString(b[:])
	rdbB := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, ClientName: f.nameB})
	rdbB.AddHook(f.doneB)
	t.Cleanup(func() { rdbB.Close() })
	f.kill = &killer{admin: f.admin, channel: f.channel}
	f.a = redisquota.New(newRedis(t, addr, f.kill), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { f.a.Close() })
	f.b = redisquota.New(rdbB, redisquota.WithPrefix(prefix))
	t.Cleanup(func() { f.b.Close() })
	// Before the Stores close (cleanups run last first): a test that
	// failed with a gate closed must not leave Close waiting behind it.
	t.Cleanup(func() { f.doneB.release("") })
	return f
}

// pubsubConn returns the id of B's pub/sub connection subscribed to a
// channel, 0 while it has none.
func (f *lossFleet) pubsubConn(t *testing.T) int64 {
	t.Helper()
	list, err := f.admin.Do(context.Background(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		var id int64
		var mine, subscribed bool
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "id":
				id, _ = strconv.ParseInt(v, 10, 64)
			case "name":
				mine = v == f.nameB
			case "sub":
				subscribed = v != "0"
			}
		}
		if mine && subscribed {
			return id
		}
	}
	return 0
}

// lose makes B lose what the first call of A that match accepts publishes:
// it kills B's pub/sub connection in the same transaction, checks that the
// channel had A alone as subscriber then, and returns once B subscribed
// again on a new connection.
func (f *lossFleet) lose(t *testing.T, match func([]any) bool, act func()) {
	t.Helper()
	f.resubscribed(t, f.drop(t, match, act))
}

// subscribed waits until B subscribed, and returns its pub/sub
// connection's id.
func (f *lossFleet) subscribed(t *testing.T) int64 {
	t.Helper()
	var id int64
	waitFor(t, "B subscribed", func() bool { id = f.pubsubConn(t); return id != 0 })
	return id
}

// resubscribed waits until B subscribed again, on another connection than
// id, and resynced.
func (f *lossFleet) resubscribed(t *testing.T, id int64) {
	t.Helper()
	waitFor(t, "B subscribed again", func() bool { n := f.pubsubConn(t); return n != 0 && n != id })
	waitFor(t, "B resynced", func() bool { return f.b.Stats().Resyncs > 0 })
}

// drop is lose, without waiting for B to subscribe again: it returns the
// id of the connection it killed.
func (f *lossFleet) drop(t *testing.T, match func([]any) bool, act func()) int64 {
	t.Helper()
	id := f.subscribed(t)
	fired := f.kill.arm(id, match)
	act()
	select {
	case <-fired:
	case <-time.After(waitBound):
		t.Fatalf("A made no armed call in %v", waitBound)
	}
	f.kill.mu.Lock()
	err, subs := f.kill.err, f.kill.subs
	f.kill.mu.Unlock()
	if err != nil || subs != 1 {
		t.Fatalf("CLIENT KILL ID %d: %v; the channel had %d subscribers when A published, want A alone", id, err, subs)
	}
	return id
}

// loaded waits until B's Store loaded n partitions (its lease calls
// answered), so that what B knows afterwards comes from the fleet's
// channel, not from a lease that read the state after the message.
func (f *lossFleet) loaded(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "B's partition loaded", func() bool { return f.doneB.script(redisquota.LeaseHash) >= n })
}

// TestMessageLostInReconnection proves that a member whose pub/sub
// connection drops, and which misses a message of each kind the fleet
// publishes while it reconnects, catches up from the state Redis holds
// once it subscribed again: the message is published in the same
// MULTI/EXEC that kills its connection, so that its loss is certain (the
// channel has A alone as subscriber), and B is then checked for what the
// message would have told it. B learns nothing from a lease meanwhile: its
// partitions know no quota (none to lease), or are paused. B misses a
// reset and a pause after it, and ends paused by the pause; and a member
// whose Redis lost the state (no reset recorded) keeps the pause it knew,
// which its resync does not lower.
func TestMessageLostInReconnection(t *testing.T) {
	const name = "https://api.example.com reads"
	t.Run("pause", func(t *testing.T) {
		f := newLossFleet(t)
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		takeToken(t, qb)
		f.loaded(t, 1)
		until := time.Now().Add(time.Minute)
		f.lose(t, evalsha(redisquota.PauseHash), func() { qa.Pause(until) })
		waitFor(t, "B paused by the pause it missed", func() bool { return qb.PauseUntil().After(time.Now().Add(30 * time.Second)) })
		if d, ok, _ := qb.Take(time.Now()); ok {
			t.Errorf("B's Take during the pause = %v, %v; want a refusal", d, ok)
		}
	})
	t.Run("reset", func(t *testing.T) {
		f := newLossFleet(t)
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		qa.Pause(time.Now().Add(10 * time.Minute))
		waitFor(t, "B sees the pause", func() bool { return qb.PauseUntil().After(time.Now()) })
		f.lose(t, evalsha(redisquota.ResetHash), qa.(resilient.QuotaResetter).Reset)
		waitFor(t, "B unpaused by the reset it missed", func() bool { return qb.PauseUntil().IsZero() })
		if d, ok, _ := qb.Take(time.Now()); !ok || d != 0 {
			t.Errorf("B's Take after the reset = %v, %v; want a token at once", d, ok)
		}
	})
	t.Run("reset before the first read", func(t *testing.T) {
		// B's partition is paused by A's message before it first reads
		// the state, which it does after the reset it missed, and before
		// its resync.
		f := newLossFleet(t)
		f.doneB.hold("lease")
		f.doneB.hold("resync")
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		f.subscribed(t) // B's first read, held back, would not tell it
		qa.Pause(time.Now().Add(10 * time.Minute))
		waitFor(t, "B sees the pause", func() bool { return qb.PauseUntil().After(time.Now()) })
		id := f.drop(t, evalsha(redisquota.ResetHash), qa.(resilient.QuotaResetter).Reset)
		waitFor(t, "B subscribed again", func() bool { n := f.pubsubConn(t); return n != 0 && n != id })
		f.doneB.release("lease")
		waitFor(t, "B's first read of the state", func() bool { return f.doneB.script(redisquota.LeaseHash) > 0 })
		if pu := qb.PauseUntil(); !pu.IsZero() {
			t.Errorf("B paused until %v after it read the state its reset cleared", pu)
		}
		f.doneB.release("resync")
		f.resubscribed(t, id)
		if pu := qb.PauseUntil(); !pu.IsZero() {
			t.Errorf("B paused until %v after its resync", pu)
		}
	})
	t.Run("reset then pause", func(t *testing.T) {
		f := newLossFleet(t)
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		qa.Pause(time.Now().Add(10 * time.Minute))
		waitFor(t, "B sees the pause", func() bool { return qb.PauseUntil().After(time.Now()) })
		f.doneB.hold("dial")
		id := f.drop(t, evalsha(redisquota.ResetHash), qa.(resilient.QuotaResetter).Reset)
		until := time.Now().Add(5 * time.Minute)
		qa.Pause(until)
		waitFor(t, "A's second pause written", func() bool { return f.a.Stats().PausesSent == 2 })
		f.doneB.release("dial")
		f.resubscribed(t, id)
		waitFor(t, "B paused by the second pause only", func() bool {
			pu := qb.PauseUntil()
			return pu.After(until.Add(-time.Minute)) && pu.Before(until.Add(time.Minute))
		})
	})
	t.Run("state lost", func(t *testing.T) {
		f := newLossFleet(t)
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		qa.Pause(time.Now().Add(10 * time.Minute))
		waitFor(t, "B sees the pause", func() bool { return qb.PauseUntil().After(time.Now()) })
		f.doneB.hold("dial")
		id := f.subscribed(t)
		ctx := context.Background()
		if err := f.admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.admin.Del(ctx, f.b.StateKey(name)).Err(); err != nil {
			t.Fatal(err)
		}
		f.doneB.release("dial")
		f.resubscribed(t, id)
		if pu := qb.PauseUntil(); pu.Before(time.Now().Add(5 * time.Minute)) {
			t.Errorf("B paused until %v after the resync of a lost state, want the 10 minutes it knew", pu)
		}
	})
	t.Run("bounded calls", func(t *testing.T) {
		f := newLossFleet(t)
		const n = 600
		for i := range n {
			f.b.Partition(name + strconv.Itoa(i))
		}
		id := f.subscribed(t)
		if err := f.admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
			t.Fatal(err)
		}
		f.resubscribed(t, id)
		// (A call that failed is made again: exact without errors.)
		if pipes, cmds := f.doneB.leasePipelines(); f.b.Stats().Errors == 0 && (pipes != 3 || cmds != n) {
			t.Errorf("the resync of %d partitions read %d states in %d calls, want %d in 3", n, cmds, pipes, n)
		}
	})
	t.Run("quota", func(t *testing.T) {
		f := newLossFleet(t)
		qa, qb := f.a.Partition(name), f.b.Partition(name)
		takeToken(t, qb)
		f.loaded(t, 1)
		f.lose(t, evalsha(redisquota.LearnHash), func() { qa.Learn(quota(100), time.Second) })
		waitFor(t, "B knows the quota it missed", func() bool {
			l, w := redisquota.Known(qb)
			return l == 100 && w == time.Second
		})
	})
	t.Run("budget", func(t *testing.T) {
		f := newLossFleet(t)
		settings := resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}
		ba, _ := f.a.Budget(name, settings), f.b.Budget(name, settings)
		for _, s := range []*redisquota.Store{f.a, f.b} {
			waitFor(t, "the first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
		}
		waitFor(t, "the members counted", func() bool { return f.a.Members() == 2 })
		f.lose(t, evalsha(redisquota.BudgetHash), func() {
			if !ba.Withdraw(1) {
				t.Fatal("a full budget refused a retry")
			}
		})
		waitFor(t, "B learns the spending it was told of", func() bool {
			_, synced, _ := f.b.BudgetView(name)
			return synced == 9
		})
	})
}

// TestLeaseReplyOlderThanMessage proves that the reply of a lease call
// that read the state before a quota was written, applied after the
// fleet's message of that quota, does not undo it: B's first call reads a
// state without a quota; A learns one, which B is told; B's reply then
// arrives. B keeps the quota it was told, and does not write it again as
// if Redis had lost it (which refreshed the time the window was last
// seen, so that a stale window was never replaced).
func TestLeaseReplyOlderThanMessage(t *testing.T) {
	const name = "https://api.example.com reads"
	f := newLossFleet(t)
	f.doneB.hold("reply")
	qa, qb := f.a.Partition(name), f.b.Partition(name)
	f.subscribed(t)
	waitFor(t, "B's first lease call run", func() bool { return f.doneB.leasesRun() > 0 })
	qa.Learn(quota(100), time.Second)
	waitFor(t, "B told A's quota", func() bool { l, _ := redisquota.Known(qb); return l == 100 })
	f.doneB.release("reply")
	waitFor(t, "B's first lease reply", func() bool { return f.doneB.script(redisquota.LeaseHash) > 0 })
	takeToken(t, qb) // B's refiller has applied the reply when it takes the next step
	if l, w := redisquota.Known(qb); l != 100 || w != time.Second {
		t.Errorf("B knows %d per %v after its older reply, want 100 per 1s", l, w)
	}
	if n := f.doneB.script(redisquota.LearnHash); n != 0 {
		t.Errorf("B wrote the quota it was told %d times, as if Redis had lost it", n)
	}
}
