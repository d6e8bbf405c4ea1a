package redisquota_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// slowRoundTrips is a go-redis hook that delays each round trip (a call
// or a pipeline) by delay while on, as a Redis far away would, or until
// its context ends.
type slowRoundTrips struct {
	on    atomic.Bool
	delay time.Duration
}

func (h *slowRoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slowRoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.wait(ctx); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (h *slowRoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.wait(ctx); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

func (h *slowRoundTrips) wait(ctx context.Context) error {
	if !h.on.Load() {
		return nil
	}
	timer := time.NewTimer(h.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestCloseWritesPartitionsInRounds proves that Close writes what
// hundreds of partitions held for their refillers in a few round trips,
// whatever their number: a Store of 300 partitions, each paused just
// before Close with a lease's tokens to give back, closed with
// WithTimeout(2s) over a Redis whose every round trip takes 20ms, writes
// every partition's pause and give-back, in at most 5 round trips (the
// pauses, the quotas not written yet, the give-backs, the leave, a
// heartbeat that raced Close). (Close
// wrote them one call each: 600 calls of 20ms do not fit in Close's
// bound, and the partitions left were lost to the fleet, named in Close's
// error.)
func TestCloseWritesPartitionsInRounds(t *testing.T) {
	const n, delay = 300, 20 * time.Millisecond
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	held := &heldScript{hash: redisquota.PauseHash, held: make(chan struct{})}
	slow := &slowRoundTrips{delay: delay}
	rt := new(scriptCounter)
	s := redisquota.New(newRedis(t, addr, held, rt, slow), redisquota.WithPrefix(prefix), redisquota.WithTimeout(2*time.Second))
	t.Cleanup(func() { s.Close() })
	qs := make([]resilient.QuotaPartition, n)
	for i := range qs {
		qs[i] = s.Partition(fmt.Sprintf("route-%d", i))
		qs[i].Learn(resilient.RateLimitInfo{Limit: 6000, Remaining: 6000, Reset: time.Now().Add(time.Minute)}, time.Minute)
	}
	for _, q := range qs {
		waitFor(t, "the state's read", func() bool { return redisquota.StateRead(q) })
	}
	for _, q := range qs {
		q.Pause(time.Now().Add(30 * time.Second))
	}
	<-held.held // the first pause's write; the others wait for it, and the give-backs for them
	for _, q := range qs {
		redisquota.GiveBack(q, 5)
	}
	slow.on.Store(true)
	before := rt.count()
	if err := s.Close(); err != nil {
		msg := err.Error()
		t.Fatalf("Close() = %d errors (%.200s…), want nil", strings.Count(msg, "\n")+1, msg)
	}
	if trips := rt.count() - before; trips > 5 {
		t.Errorf("Close made %d round trips, want at most 5", trips)
	}
	rdb := newRedis(t, addr)
	ctx := context.Background()
	pauses := make([]*redis.StringCmd, n)
	gives := make([]*redis.StringCmd, n)
	rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, q := range qs {
			key := s.StateKey(fmt.Sprintf("route-%d", i))
			pauses[i] = pl.HGet(ctx, key, "pause")
			gives[i] = pl.HGet(ctx, key, redisquota.GivebackField(q))
		}
		return nil
	})
	var unpaused, ungiven int
	for i := range qs {
		if pauses[i].Val() == "" {
			unpaused++
		}
		if f := strings.Fields(gives[i].Val()); len(f) == 0 {
			ungiven++
		} else if cum, _ := strconv.ParseInt(f[0], 10, 64); cum <= 0 {
			ungiven++
		}
	}
	if unpaused > 0 || ungiven > 0 {
		t.Errorf("after Close, %d of %d partitions have no pause in Redis and %d gave back no token, want 0 and 0", unpaused, n, ungiven)
	}
}

// noScriptOnce is a go-redis hook that answers the first pipeline that
// carries the script whose hash is hash as a Redis that lost its scripts
// would (restarted, or its script cache flushed): NOSCRIPT to each of its
// commands, none run.
type noScriptOnce struct {
	hash string
	done atomic.Bool
}

// noScript is Redis's error for a script it does not hold.
type noScript struct{}

func (noScript) Error() string { return "NOSCRIPT No matching script. Please use EVAL." }
func (noScript) RedisError()   {}

func (h *noScriptOnce) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *noScriptOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *noScriptOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if a := c.Args(); len(a) > 1 && a[1] == h.hash && h.done.CompareAndSwap(false, true) {
				for _, c := range cmds {
					c.SetErr(noScript{})
				}
				return noScript{}
			}
		}
		return next(ctx, cmds)
	}
}

// TestCloseWritesWhenScriptsLost proves that Close's pipelined writes of
// the partitions survive a Redis that lost its scripts: the writes it
// refused with NOSCRIPT are sent again once the script is loaded, and
// the pause reaches Redis.
func TestCloseWritesWhenScriptsLost(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	held := &heldScript{hash: redisquota.PauseHash, held: make(chan struct{})}
	lost := &noScriptOnce{hash: redisquota.PauseHash}
	s := redisquota.New(newRedis(t, addr, held, lost), redisquota.WithPrefix(prefix), redisquota.WithTimeout(2*time.Second))
	t.Cleanup(func() { s.Close() })
	const name = "api.example.com"
	q := s.Partition(name)
	waitFor(t, "the state's read", func() bool { return redisquota.StateRead(q) })
	q.Pause(time.Now().Add(30 * time.Second))
	<-held.held // the refiller's write, which Close cancels
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if !lost.done.Load() {
		t.Fatal("Close sent no pipeline of the pause script, want its pause's write in one")
	}
	if p := newRedis(t, addr).HGet(context.Background(), s.StateKey(name), "pause").Val(); p == "" {
		t.Error("after Close, the partition has no pause in Redis, want the member's")
	}
}
