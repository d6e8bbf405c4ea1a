package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
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
