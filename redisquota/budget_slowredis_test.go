package redisquota_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// slowBudgetSyncs is a go-redis hook that holds each pipeline of the
// budgets' syncs (the budget script's calls) for delay, while on, and
// counts those it held.
type slowBudgetSyncs struct {
	on    atomic.Bool
	delay time.Duration
	held  atomic.Int64
}

func (h *slowBudgetSyncs) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *slowBudgetSyncs) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *slowBudgetSyncs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() {
			for _, c := range cmds {
				if args := c.Args(); len(args) > 3 && strings.HasSuffix(args[3].(string), ":budget") {
					h.held.Add(1)
					time.Sleep(h.delay)
					break
				}
			}
		}
		return next(ctx, cmds)
	}
}

// TestFleetBudgetSlowRedis proves that a Redis whose every budget sync
// answers after 2 s (a member's client stalled; the other's answers)
// neither holds a call nor lets the fleet's retries grow past each
// member's Burst: the stalled member falls back to its view alone after
// WithFallbackAfter (its retries counted in Stats.BudgetLocal), and the
// fleet's retries in an outage stay within members × Burst.
func TestFleetBudgetSlowRedis(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members, calls = 2, 30
	slow := &slowBudgetSyncs{delay: 2 * time.Second}
	f := &budgetFleet{url: srv.URL + "/v1/usage", name: srv.URL}
	for i := range members {
		var hooks []redis.Hook
		if i == 0 {
			hooks = append(hooks, slow)
		}
		s := redisquota.New(newRedis(t, addr, hooks...), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(200*time.Millisecond))
		t.Cleanup(func() { s.Close() })
		f.stores = append(f.stores, s)
		f.clients = append(f.clients, &http.Client{Transport: resilient.New(srv.Transport(),
			resilient.WithQuotaStore(s), resilient.WithoutBreaker(),
			resilient.WithBackoff(time.Millisecond, 5*time.Millisecond))})
	}
	f.waitMembers(t)
	f.calls(t, 1) // the budget loaded
	for i := range members {
		waitFor(t, "the budget synced", func() bool { return f.stores[i].Stats().BudgetSyncs > 0 })
	}
	slow.on.Store(true)
	outage(srv)
	before := srv.Stats().Requests
	for range 4 {
		if got := f.calls(t, calls); got[500] != members*calls {
			t.Fatalf("outage, member 0's Redis slow: statuses %v, want %d 500s", got, members*calls)
		}
		time.Sleep(500 * time.Millisecond)
	}
	retries := srv.Stats().Requests - before - 4*members*calls
	t.Logf("member 0's syncs answered after 2s: %d retries for %d calls; %d syncs held; local retries %d, %d",
		retries, 4*members*calls, slow.held.Load(), f.stores[0].Stats().BudgetLocal, f.stores[1].Stats().BudgetLocal)
	if slow.held.Load() == 0 {
		t.Fatal("no sync of member 0 was held")
	}
	if bound := members * resilient.DefaultRetryBudgetBurst; retries > bound {
		t.Errorf("%d retries in an outage, member 0's Redis slow, want at most members × Burst (%d)", retries, bound)
	}
}
