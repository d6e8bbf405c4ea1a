package redisquota_test

import (
	"context"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestCloseLeavesPartitions proves that Close takes the member out of the
// active members of the partitions it used, so that the members left
// lease its share of the quota at once. (Close left the heartbeats' count
// only: the partition kept counting the closed member for three of its
// heartbeats, and the fleet, scaling down, ran below its quota.)
func TestCloseLeavesPartitions(t *testing.T) {
	f := twoMembers(t)
	const name = "api.example.com"
	ctx := context.Background()
	rdb := newRedis(t, f.addr)
	mkey := f.a.StateKey(name) + ":members"
	qa, qb := f.a.Partition(name), f.b.Partition(name)
	qa.Learn(resilient.RateLimitInfo{Limit: 6000, Remaining: 6000, Reset: time.Now().Add(time.Minute)}, time.Minute)
	waitFor(t, "both members' leases", func() bool {
		qa.Take(time.Now())
		qb.Take(time.Now())
		return f.a.Stats().Tokens > 0 && f.b.Stats().Tokens > 0
	})
	if n := rdb.ZCard(ctx, mkey).Val(); n != 2 {
		t.Fatalf("the partition's active members before Close = %d, want 2", n)
	}
	if err := f.a.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if _, err := rdb.ZScore(ctx, mkey, f.a.MemberID()).Result(); err != redis.Nil {
		t.Errorf("the closed member among the partition's active members: ZSCORE error %v, want redis.Nil (the member left)", err)
	}
	if _, err := rdb.ZScore(ctx, mkey, f.b.MemberID()).Result(); err != nil {
		t.Errorf("the open member among the partition's active members: ZSCORE error %v, want it counted", err)
	}
}

// TestCloseLeaveNotUndoneByLateLease proves that a lease call Redis runs
// after Close left (the refiller's call timed out on its way, and Redis
// ran it late) does not count the closed member among the partition's
// active members again: the call is a late one (Close's last write of the
// partition took the next number) and counts nobody. (It added the member
// back, for three of its heartbeats, and the members left leased a
// smaller share.)
func TestCloseLeaveNotUndoneByLateLease(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	h := &lostGiveback{want: true, failed: make(chan []any, 1)}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	const name = "close leave late lease"
	q, _ := lostLeaseBucket(t, s, rdb, name)
	h.armed.Store(true)
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Fatal("Take() = false, want the first lease's token")
	}
	late := <-h.failed
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if _, err := rdb.Do(ctx, late...).Result(); err != nil {
		t.Fatalf("the late call: %v", err)
	}
	if _, err := rdb.ZScore(ctx, s.StateKey(name)+":members", s.MemberID()).Result(); err != redis.Nil {
		t.Errorf("the closed member among the partition's active members after a late lease call: ZSCORE error %v, want redis.Nil", err)
	}
}

// TestCloseLeaveNotUndoneByLateStateRead proves that the first lease call
// of a partition, which reads its state and asks for no token (the member
// knows no quota yet), does not count the closed member among the
// partition's active members again when Redis runs it after Close left.
func TestCloseLeaveNotUndoneByLateStateRead(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	h := new(leaseFaults)
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	const name = "close leave late state read"
	h.set(faultLate)
	s.Partition(name)
	var late []any
	waitFor(t, "the state read, failed", func() bool {
		late = h.takeLate(mrand.New(mrand.NewPCG(1, 1)))
		return late != nil
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := rdb.Do(ctx, late...).Err(); err != nil {
		t.Fatalf("the late call: %v", err)
	}
	if _, err := rdb.ZScore(ctx, s.StateKey(name)+":members", s.MemberID()).Result(); err != redis.Nil {
		t.Errorf("the closed member among the partition's active members after a late state read: ZSCORE error %v, want redis.Nil", err)
	}
}
