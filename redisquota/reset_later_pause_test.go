package redisquota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestResetKeepsShorterPauseSetSince proves that a reset keeps a pause
// another member set after the Reset was made, though that pause ends
// before the pause Redis held when the Reset was made: B's pause of a
// minute is held; A resets (its reset waiting in Redis's slowness, here
// for an earlier reset of A's, whose script is held); then D gets a 429 of
// its own and writes a pause of 30s, which the held minute covers. A's
// reset then runs: it clears B's pause, set before the Reset, and must
// keep D's, set after it, as the package documentation promises ("a pause
// another member set after it (a 429 it received since) ... stays").
// Before, D wrote nothing (its pause, covered by the one it knew, was not
// written), nor did the pause script record a covered pause, and the
// reset cleared the fleet's pause whole: every member sent through D's
// 429.
func TestResetKeepsShorterPauseSetSince(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	const name, otherName = "https://api.example.com reads", "https://api.example.com writes"
	otherKey := redisquota.StateKeyIn(prefix, otherName)
	h := &gateHook{
		match: func(args []any) bool {
			return evalsha(redisquota.ResetHash)(args) && len(args) > 3 && args[3] == otherKey
		},
		seen: make(chan string, 4), release: make(chan struct{}),
	}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	b := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	d := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() {
		b.Close()
		d.Close()
		close(h.release)
		a.Close()
	})
	qa, qb, qd, other := a.Partition(name), b.Partition(name), d.Partition(name), a.Partition(otherName)
	waitFor(t, "the states read", func() bool {
		for _, q := range []resilient.QuotaPartition{qa, qb, qd, other} {
			q.Take(time.Now())
			if !redisquota.StateRead(q) {
				return false
			}
		}
		return a.Subscribed() && b.Subscribed() && d.Subscribed()
	})
	rdb := newRedis(t, addr)
	pauseLeft := func() time.Duration {
		ctx := context.Background()
		v, err := rdb.HGet(ctx, a.StateKey(name), "pause").Result()
		if err != nil {
			return 0
		}
		tm, _ := rdb.Time(ctx).Result()
		us, _ := strconv.ParseInt(v, 10, 64)
		return time.Duration(us-tm.UnixMicro()) * time.Microsecond
	}

	qb.Pause(time.Now().Add(time.Minute))
	waitFor(t, "B's pause at A and D", func() bool { return a.Stats().PausesReceived == 1 && d.Stats().PausesReceived == 1 })

	other.(resilient.QuotaResetter).Reset()
	<-h.seen // A's reset of the other partition is held: this one's waits for it
	qa.(resilient.QuotaResetter).Reset()
	// D's 429 comes 500ms after A's Reset: the reset counts from the
	// Reset, less the latency of its own call to Redis (far less), which
	// it cannot tell apart.
	time.Sleep(500 * time.Millisecond)

	// D's 429, after A's Reset: its pause of 30s, written to Redis while
	// B's minute is held there.
	qd.Pause(time.Now().Add(30 * time.Second))
	waitFor(t, "D's pause written", func() bool { return redisquota.PauseDirtyCleared(qd) })

	h.release <- struct{}{} // A's resets run
	waitFor(t, "A's reset at B", func() bool { return redisquota.LastReset(qb) > 0 })
	if left := pauseLeft(); left < 20*time.Second || left > 31*time.Second {
		t.Errorf("after A's reset, Redis holds a pause of %v; want D's 30s, set after A's Reset", left.Round(time.Second))
	}
	if pu := qb.PauseUntil(); pu.IsZero() {
		t.Errorf("B unpaused by A's reset; want D's 30s pause, set after A's Reset, kept")
	}
}
