package redisquota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestResetKeepsNoHostilePause proves that a pause a corrupt or hostile
// hand wrote in the state, hundreds of years ahead, and which the reset
// script keeps (set after the reset's time, by another Store) and
// publishes, pauses no member: its distance from the reset's time, in
// microseconds, overflowed a time.Duration and wrapped to half an hour,
// within maxPause, and every member paused for it. A clean reset of a
// second partition, published after it, tells when the first has been
// handled.
func TestResetKeepsNoHostilePause(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	ctx := context.Background()
	const name, other = "https://api.example.com reads", "https://api.example.com writes"
	qb, qo := f.b.Partition(name), f.b.Partition(other)
	waitFor(t, "B reads the partitions", func() bool { return redisquota.StateRead(qb) && redisquota.StateRead(qo) })
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// 2^64+30min+384ns in µs, less the few ms until the reset runs: the
	// reset's now minus it wraps to just under half an hour.
	const far = 18446745873709552
	if err := rdb.HSet(ctx, f.b.StateKey(name),
		"pause", strconv.FormatInt(now.UnixMicro()+far, 10), "pset", now.UnixMicro(), "pby", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redisquota.RunReset(f.a, name, time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if err := redisquota.RunReset(f.a, other, time.Minute, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B hears the second reset", func() bool { return redisquota.LastReset(qo) != 0 })
	if got := f.b.Stats().ResetsReceived; got != 2 {
		t.Fatalf("B applied %d resets, want 2", got)
	}
	if pu := qb.PauseUntil(); !pu.IsZero() {
		t.Errorf("after a reset that kept a pause of 584 years, B is paused for %v, want no pause: the pause is not believed", time.Until(pu).Round(time.Second))
	}
}
