package redisquota_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// resetResender is a go-redis hook that sends the first call of the reset
// script after it is armed twice, as go-redis does itself when the
// connection breaks after Redis ran the command and before its reply
// came; between the two, it runs between (another member's write).
type resetResender struct {
	armed   atomic.Bool
	resent  atomic.Bool
	between func(age int64)
}

func (h *resetResender) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *resetResender) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) > 4 && evalsha(redisquota.ResetHash)(a) && h.armed.CompareAndSwap(true, false) {
			if err := next(ctx, cmd); err != nil {
				return err
			}
			age, _ := strconv.ParseInt(fmt.Sprint(a[4]), 10, 64)
			h.between(age)
			h.resent.Store(true)
		}
		return next(ctx, cmd)
	}
}
func (h *resetResender) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestResetResentKeepsPauseSetBetween proves that a reset the client sent
// twice (go-redis resends a command whose connection broke before its
// reply came, the script having run) keeps a pause another member wrote
// between the two runs, after the Reset: the second run computed its
// cut-off from its own, later, time (now - age), took that pause for one
// set before the Reset, and cleared it: every member sent through the 429
// that member had just received.
func TestResetResentKeepsPauseSetBetween(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	const name = "https://api.example.com reads"
	key := redisquota.StateKeyIn(prefix, name)
	var pset int64
	h := &resetResender{between: func(age int64) {
		// Another member's 429 after the reset ran: its pause, set now.
		now, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Error(err)
			return
		}
		pset = now.UnixMicro()
		if err := rdb.HSet(ctx, key, "pause", pset+int64(10*time.Minute/time.Microsecond), "pset", pset, "pby", "b").Err(); err != nil {
			t.Error(err)
		}
		// Redis's clock passes pset by more than the reset's age before
		// the resend: read by the resend's time, the pause was set before
		// its cut-off.
		for now.UnixMicro() <= pset+age+1000 {
			if now, err = rdb.Time(ctx).Result(); err != nil {
				t.Error(err)
				return
			}
		}
	}}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { a.Close() })
	if err := redisquota.LoadScripts(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	h.armed.Store(true)
	if err := redisquota.RunReset(a, name, time.Millisecond, 1); err != nil {
		t.Fatal(err)
	}
	if !h.resent.Load() {
		t.Fatal("the reset was not sent twice")
	}
	got, err := rdb.HGet(ctx, key, "pset").Result()
	if err != nil || got != strconv.FormatInt(pset, 10) {
		t.Errorf("after the resent reset, the state's pause was set at %q (%v), want %d: the pause written between the two runs, after the Reset, is kept", got, err, pset)
	}
}
