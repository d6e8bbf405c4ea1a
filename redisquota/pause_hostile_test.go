package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestHostilePauseDoesNotSwallowFleetPause proves that a pause in Redis
// further ahead than any member writes (a corrupt or hostile hand) does
// not keep a member's real pause from the fleet: the pause script, which
// wrote nothing while it held "a later pause", found none, the lease
// that followed deleted the unbelieved one, and the other members kept
// sending through the server's Retry-After.
func TestHostilePauseDoesNotSwallowFleetPause(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	ctx := context.Background()
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	const name = "https://api.example.com reads"
	if err := rdb.HSet(ctx, f.a.StateKey(name), "limit", 100, "window", 1000000,
		"pause", now.Add(10*year).UnixMicro()).Err(); err != nil {
		t.Fatal(err)
	}
	qa := f.a.Partition(name)
	qa.Learn(quota(100), time.Second)
	qa.Pause(time.Now().Add(30 * time.Second))
	waitFor(t, "the member read the state", func() bool { return redisquota.StateRead(qa) })
	qb := f.b.Partition(name)
	waitFor(t, "the member's pause reaches the other member", func() bool {
		pu := qb.PauseUntil()
		return !pu.IsZero() && time.Until(pu) < time.Minute
	})
}
