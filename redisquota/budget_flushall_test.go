package redisquota_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestFleetBudgetFlushedMidOutage proves that a Redis that loses the
// fleet's state in an outage (FLUSHALL, on a Redis of the test's own)
// gives the fleet one new Burst, as a budget Redis does not hold starts
// full, and no more: the members' retries after the flush stay within the
// bound of an outage's start (2×Burst + members), and no call fails.
func TestFleetBudgetFlushedMidOutage(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members, calls = 2, 30
	f := newBudgetFleet(t, members, rs.addr(), prefix, srv)
	f.waitMembers(t)
	outage(srv)
	bound := 2*resilient.DefaultRetryBudgetBurst + members
	before := srv.Stats().Requests
	if got := f.calls(t, calls); got[500] != members*calls {
		t.Fatalf("outage: statuses %v, want %d 500s", got, members*calls)
	}
	if retries := srv.Stats().Requests - before - members*calls; retries > bound {
		t.Fatalf("%d retries at the outage's start, want at most %d", retries, bound)
	}
	for i := range members {
		waitFor(t, "member "+strconv.Itoa(i)+" synced", func() bool {
			v, synced, _ := f.stores[i].BudgetView(f.name)
			return v == synced && v < 1
		})
	}

	if err := newRedis(t, rs.addr()).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	before = srv.Stats().Requests
	for range 3 {
		if got := f.calls(t, calls); got[500] != members*calls {
			t.Fatalf("outage after FLUSHALL: statuses %v, want %d 500s", got, members*calls)
		}
	}
	retries := srv.Stats().Requests - before - 3*members*calls
	t.Logf("after FLUSHALL: %d retries for %d calls", retries, 3*members*calls)
	if retries > bound {
		t.Errorf("%d retries after the fleet's state was flushed, want at most %d (one new Burst)", retries, bound)
	}
}
