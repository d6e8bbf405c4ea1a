package redisquota_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestFleetBudgetReadOnlyRedis proves that a Redis that turns read-only in
// an outage (a replica, REPLICAOF a master that is not there: every sync's
// write refused, READONLY) never fails a call: each member's budget goes
// local, spending its view alone, so that the fleet's retries stay within
// members × Burst in all; and the budgets are shared again once Redis
// takes writes.
func TestFleetBudgetReadOnlyRedis(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members, calls = 2, 30
	f := newBudgetFleet(t, members, rs.addr(), prefix, srv)
	f.waitMembers(t)
	rdb := newRedis(t, rs.addr())
	ctx := context.Background()
	if err := rdb.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(freePort(t))).Err(); err != nil {
		t.Fatal(err)
	}
	outage(srv)
	before := srv.Stats().Requests
	f.calls(t, 1) // a retry each: a sync, refused
	for i, s := range f.stores {
		waitFor(t, "member "+strconv.Itoa(i)+"'s budgets go local", s.BudgetsLocal)
	}
	for range 3 {
		if got := f.calls(t, calls); got[500] != members*calls {
			t.Fatalf("outage, Redis read-only: statuses %v, want %d 500s", got, members*calls)
		}
	}
	retries := srv.Stats().Requests - before - members*(3*calls+1)
	t.Logf("Redis read-only: %d retries", retries)
	if bound := members * resilient.DefaultRetryBudgetBurst; retries > bound {
		t.Errorf("%d retries with Redis read-only, want at most members × Burst (%d)", retries, bound)
	}
	if err := rdb.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	syncs := []int64{f.stores[0].Stats().BudgetSyncs, f.stores[1].Stats().BudgetSyncs}
	f.calls(t, 1)
	for i, s := range f.stores {
		waitFor(t, "member "+strconv.Itoa(i)+" syncs again", func() bool { return s.Stats().BudgetSyncs > syncs[i] && !s.BudgetsLocal() })
	}
}
