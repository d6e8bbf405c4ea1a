package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestResetMessageWithHostileKeptQuota proves that a reset whose message
// carries a value the reset kept from a hostile or corrupt state (a limit
// Lua reads as a number but Go does not parse as an integer: "1e2") still
// reaches the members: the message was dropped whole, and every other
// member kept the pause the reset cleared, until it ended. A clean reset
// of a second partition, published after it on the same channel, tells
// when the first has been handled.
func TestResetMessageWithHostileKeptQuota(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	ctx := context.Background()
	const name, other = "https://api.example.com reads", "https://api.example.com writes"
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The fleet is paused (set long ago: the reset clears it), and holds a
	// quota written just now by another hand (the reset keeps it), in a
	// form Lua reads as 100.
	if err := rdb.HSet(ctx, f.b.StateKey(name),
		"pause", now.Add(10*time.Minute).UnixMicro(), "pset", now.Add(-time.Hour).UnixMicro(), "pby", "x",
		"limit", "1e2", "window", "1000000", "lset", now.UnixMicro(), "lby", "x").Err(); err != nil {
		t.Fatal(err)
	}
	qb, qo := f.b.Partition(name), f.b.Partition(other)
	waitFor(t, "B reads the fleet's pause", func() bool { return !qb.PauseUntil().IsZero() })
	waitFor(t, "B reads the other partition", func() bool { return redisquota.StateRead(qo) })

	if err := redisquota.RunReset(f.a, name, time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if err := redisquota.RunReset(f.a, other, time.Minute, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B hears the second reset", func() bool { return redisquota.LastReset(qo) != 0 })
	if got := f.b.Stats().ResetsReceived; got != 2 {
		t.Errorf("B applied %d resets, want 2: the first reset's message was dropped", got)
	}
	if pu := qb.PauseUntil(); !pu.IsZero() {
		t.Errorf("after the fleet's reset, B is still paused for %v", time.Until(pu).Round(time.Second))
	}
}
