package redisquota_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// leaseResender is a go-redis hook that sends the first call of the lease
// script that asks for tokens after it is armed twice, as go-redis does
// itself (its MaxRetries, 3 by default) when the connection breaks after
// Redis ran the command and before its reply came: the caller gets the
// second reply only.
type leaseResender struct {
	armed  atomic.Bool
	resent atomic.Bool
}

func (h *leaseResender) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *leaseResender) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) > 6 && a[1] == redisquota.LeaseHash && fmt.Sprint(a[6]) != "0" && h.armed.CompareAndSwap(true, false) {
			if err := next(ctx, cmd); err != nil {
				return err
			}
			h.resent.Store(true)
		}
		return next(ctx, cmd)
	}
}
func (h *leaseResender) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLeaseResentGivesTokensBack proves that a lease call the client sent
// twice (go-redis resends a command whose connection broke before its
// reply came, the script having run) takes from the fleet's bucket only
// the tokens the member got: the second run gives the first run's grant
// back and grants again. (The second run, taken for a late call, granted
// nothing, and the first run's tokens went to nobody.)
func TestLeaseResentGivesTokensBack(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	h := new(leaseResender)
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	q, tat := lostLeaseBucket(t, s, rdb, "lease resent")
	before, st := tat(), s.Stats()
	h.armed.Store(true)
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Fatal("Take() = false, want the first lease's token")
	}
	waitFor(t, "a lease after the resent call", func() bool {
		return h.resent.Load() && s.Stats().Tokens > st.Tokens
	})
	after := s.Stats()
	held := after.Tokens - st.Tokens - (after.Returned - st.Returned)
	if got := tat() - before; math.Abs(got-float64(held)) > 0.01 {
		t.Errorf("the bucket took %.3f tokens since, want %d, the member's: the resent call's first run granted to nobody", got, held)
	}
}
