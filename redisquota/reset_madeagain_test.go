package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestResetOfPartitionMadeAgainClearsPause proves that a Reset of a
// partition the Store forgot (dropped to make room, and collected) and
// made again clears a pause another member set before it. The partition
// made again numbered its Resets from one, as the forgotten one did: the
// reset script found the forgotten one's first reset recorded (its Store,
// its number) and took the new reset for that one resent, cutting off at
// the old run's time; the pause, set after that time but before the new
// Reset, was kept, and the fleet stayed paused through the Reset.
func TestResetOfPartitionMadeAgainClearsPause(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	a := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { a.Close() })
	const name = "https://api.example.com made again"
	key := a.StateKey(name)

	q1 := a.Partition(name)
	q1.(resilient.QuotaResetter).Reset()
	waitFor(t, "the first reset recorded", func() bool {
		return rdb.HGet(ctx, key, "rby").Val() == a.Instance()
	})
	if !a.ForgetPartitionCollected(name) {
		t.Fatal("the Store did not hold the partition")
	}

	// Another member's 429, after the first reset and before the second
	// Reset: its pause, set now.
	tm, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	pset := tm.UnixMicro()
	if err := rdb.HSet(ctx, key, "pause", pset+(10*time.Minute).Microseconds(), "pset", pset, "pby", "b").Err(); err != nil {
		t.Fatal(err)
	}
	// Redis's clock passes pset before the Reset, so that the pause is
	// set before it, whatever the Reset's age.
	for tm.UnixMicro() <= pset+(20*time.Millisecond).Microseconds() {
		if tm, err = rdb.Time(ctx).Result(); err != nil {
			t.Fatal(err)
		}
	}

	q2 := a.Partition(name)
	if q2 == q1 {
		t.Fatal("the partition was not made again")
	}
	q2.(resilient.QuotaResetter).Reset()
	waitFor(t, "the second reset written", func() bool { return a.Stats().ResetsSent == 2 })
	if got, err := rdb.HGet(ctx, key, "pset").Result(); err != redis.Nil {
		t.Errorf("after the Reset of the partition made again, the state holds a pause set at %q (%v), before the Reset (%d); want none: the Reset clears it", got, err, pset)
	}
}
