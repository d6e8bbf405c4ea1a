package redisquota_test

import (
	"context"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// outage is a long enough script of 500s for a route: a persistent outage,
// until the script is removed.
func outage(srv *resilienttest.Server) {
	steps := make([]resilienttest.Step, 100000)
	for i := range steps {
		steps[i] = resilienttest.Respond(http.StatusInternalServerError)
	}
	srv.SetScript(resilienttest.RouteUsage, steps...)
}

// budgetFleet is a fleet of members in one process: a Store and a
// Transport each, against one server.
type budgetFleet struct {
	stores  []*redisquota.Store
	clients []*http.Client
	url     string
	name    string // the host's budget
}

// newBudgetFleet returns n members sharing the fleet of prefix on the
// Redis at addr. Their Transports have no breaker, so that only the budget
// stops their retries.
func newBudgetFleet(t *testing.T, n int, addr, prefix string, srv *resilienttest.Server, opts ...redisquota.Option) *budgetFleet {
	t.Helper()
	f := &budgetFleet{url: srv.URL + "/v1/usage", name: srv.URL}
	for range n {
		opts := append([]redisquota.Option{redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(200 * time.Millisecond)}, opts...)
		s := redisquota.New(newRedis(t, addr), opts...)
		t.Cleanup(func() { s.Close() })
		f.stores = append(f.stores, s)
		f.clients = append(f.clients, &http.Client{Transport: resilient.New(srv.Transport(),
			resilient.WithQuotaStore(s), resilient.WithoutBreaker(),
			resilient.WithBackoff(time.Millisecond, 5*time.Millisecond))})
	}
	return f
}

// waitMembers waits until every Store counts n members, when Redis
// answers.
func (f *budgetFleet) waitMembers(t *testing.T) {
	t.Helper()
	for _, s := range f.stores {
		waitFor(t, "the members counted", func() bool { return s.Members() == len(f.stores) })
	}
}

// calls makes n sequential GETs from each member, the members in
// parallel, and returns how many answers had each status; an error fails
// the test.
func (f *budgetFleet) calls(t *testing.T, n int, members ...int) map[int]int {
	t.Helper()
	if members == nil {
		for i := range f.clients {
			members = append(members, i)
		}
	}
	var mu sync.Mutex
	got := make(map[int]int)
	var wg sync.WaitGroup
	for _, i := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				resp, err := f.clients[i].Get(f.url)
				if err != nil {
					t.Errorf("member %d: GET: %v", i, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				got[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// view returns member i's view of the host's budget.
func (f *budgetFleet) view(i int) float64 {
	v, _, _ := f.stores[i].BudgetView(f.name)
	return v
}

// TestBudgetScript checks the script that syncs a budget: a new budget
// starts full; a Store's net change is applied once, however many times it
// is sent; the balance stays within [0, burst]; a field the budget does not
// hold applies its last change only, and a new Store of a member id known
// (b:a:2 after b:a:1) starts a total of its own. Then, the fields not
// synced for an hour are deleted by the next sync.
func TestBudgetScript(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer s.Close()
	key := s.BudgetKey("https://api.example.com:443")
	for i, step := range []struct {
		field             string
		cum, delta, burst int64
		want              int64
	}{
		{"b:a:1:1", -3000, -3000, 10000, 7000},   // a new budget: full, less 3 tokens
		{"b:a:1:1", -3000, -3000, 10000, 7000},   // the same sync again (a timeout): applied once
		{"b:a:1:1", -5000, -2000, 10000, 5000},   // 2 more
		{"b:b:1:1", 1000, 1000, 10000, 6000},     // another Store's deposits
		{"b:a:1:1", -20000, -15000, 10000, 0},    // never below zero
		{"b:b:1:1", 100000, 99000, 10000, 10000}, // never above the burst
		{"b:c:1:1", -900000, -4000, 10000, 6000}, // a field unknown: its last change only
		{"b:c:1:1", -900500, -500, 10000, 5500},  // known: the difference
		{"b:a:1:1", -20000, -20000, 10000, 5500}, // a refresh: nothing changes, whatever the delta
		{"b:b:1:1", 200000, 100000, 5000, 5000},  // capped at the caller's burst
		{"b:a:1:1", -20200, -200, 10000, 4800},   // a throttled retry
		{"b:a:1:1", -20200, -200, 10000, 4800},   // resent: once
		{"b:a:2:1", 0, 0, 10000, 4800},           // a new Store of member a: its own total, from 0
		{"b:a:2:1", 1000, 1000, 10000, 5800},     // its deposits
		{"b:a:2:1", 1000, 1000, 10000, 5800},     // resent: once
	} {
		got, err := redisquota.SyncBudget(s, key, step.field, step.cum, step.delta, step.burst)
		if err != nil || got != step.want {
			t.Fatalf("step %d: field %s, cum %d, delta %d: balance %d, %v; want %d", i, step.field, step.cum, step.delta, got, err, step.want)
		}
	}
	rdb := newRedis(t, addr)
	ctx := context.Background()
	fkey := key + ":fields"
	for _, k := range []string{key, fkey} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl < 23*time.Hour {
			t.Errorf("%s expires in %v, want a day", k, ttl)
		}
	}
	if n := rdb.ZCard(ctx, fkey).Val(); n != 4 {
		t.Errorf("%d fields recorded, want 4", n)
	}

	// b:a:1:1 was last synced just over an hour ago, b:b:1:1 just under.
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) float64 { return float64(now.Add(-d).UnixMicro()) }
	rdb.ZAdd(ctx, fkey, redis.Z{Score: at(redisquota.TotalTTL + time.Minute), Member: "b:a:1:1"},
		redis.Z{Score: at(redisquota.TotalTTL - time.Minute), Member: "b:b:1:1"})
	if got, err := redisquota.SyncBudget(s, key, "b:c:1:1", -900500, 0, 10000); err != nil || got != 5800 {
		t.Fatalf("a refresh: balance %d, %v; want 5800", got, err)
	}
	fields := rdb.HKeys(ctx, key).Val()
	slices.Sort(fields)
	if want := []string{"b:a:2:1", "b:b:1:1", "b:c:1:1", "bal"}; !slices.Equal(fields, want) {
		t.Errorf("the budget's fields %v, want %v (b:a:1:1, an hour old, deleted)", fields, want)
	}
	if n := rdb.ZCard(ctx, fkey).Val(); n != 3 {
		t.Errorf("%d fields recorded, want 3", n)
	}
}

// TestFleetBudgetOutage proves that the members of a fleet spend one retry
// budget in an outage, not one each: 4 members, each with a Transport,
// call a server in a persistent 500, 50 calls each. Each member may spend,
// before Redis confirms, its share of the balance it last saw (at least
// one retry), so the fleet's retries stay under 2×Burst + members (24)
// however the syncs interleave (see the package doc), where 4 members
// alone would make 4×Burst (40); a run typically measures Burst plus one
// per member or less (11–14 measured). Redis answering within WithFallbackAfter
// (raised to 2s here, for a busy machine) is the condition of the bound:
// a member whose Redis is slower spends its view alone. Then, the server
// recovered, one member's answers refill the budget the others see, and
// another member's next call in an outage is retried again.
func TestFleetBudgetOutage(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members, calls = 4, 50
	f := newBudgetFleet(t, members, addr, prefix, srv, redisquota.WithFallbackAfter(2*time.Second))
	f.waitMembers(t)
	outage(srv)
	got := f.calls(t, calls)
	attempts := srv.Stats().Requests
	retries := attempts - members*calls
	t.Logf("outage: %d attempts for %d calls from %d members: %d retries; statuses %v", attempts, members*calls, members, retries, got)
	if got[500] != members*calls {
		t.Errorf("statuses %v, want %d 500s (a refused retry returns the last response)", got, members*calls)
	}
	if bound := 2*resilient.DefaultRetryBudgetBurst + members; retries > bound {
		t.Errorf("%d retries in an outage, want at most 2×Burst + members (%d); alone, the members would make %d", retries, bound, members*resilient.DefaultRetryBudgetBurst)
	}
	// Every member's changes reach Redis before the recovery.
	for i := range members {
		waitFor(t, "member "+strconv.Itoa(i)+" synced", func() bool {
			v, synced, _ := f.stores[i].BudgetView(f.name)
			return v == synced
		})
	}

	// Recovery: 50 answers to member 0 deposit 10 tokens, which every
	// member sees.
	srv.SetScript(resilienttest.RouteUsage)
	if got := f.calls(t, 50, 0); got[200] != 50 {
		t.Fatalf("after the recovery: statuses %v, want 50 200s", got)
	}
	rdb := newRedis(t, addr)
	key := f.stores[0].BudgetKey(f.name)
	waitFor(t, "the answers reach Redis", func() bool {
		bal, _ := rdb.HGet(context.Background(), key, "bal").Int64()
		return bal == 1000*resilient.DefaultRetryBudgetBurst
	})
	for i := 1; i < members; i++ {
		waitFor(t, "member "+strconv.Itoa(i)+" sees the refill", func() bool { return f.view(i) == resilient.DefaultRetryBudgetBurst })
	}
	// Member 1, whose own answers refilled nothing, is retried again.
	outage(srv)
	before := srv.Stats().Requests
	f.calls(t, 1, 1)
	if n := srv.Stats().Requests - before; n < 2 {
		t.Errorf("member 1's call made %d attempts after member 0 refilled the budget, want a retry at least", n)
	} else {
		t.Logf("member 1's call after the refill: %d attempts", n)
	}
}

// TestFleetBudgetRedisDown proves that members whose Redis refuses every
// connection never fail a call because of it: each spends its local
// budget alone, as without a store (Burst retries each in an outage).
func TestFleetBudgetRedisDown(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members = 2
	f := newBudgetFleet(t, members, "127.0.0.1:"+strconv.Itoa(freePort(t)), "rqtest:budget-down", srv)
	if got := f.calls(t, 20); got[200] != members*20 {
		t.Errorf("healthy server: statuses %v, want %d 200s", got, members*20)
	}
	outage(srv)
	before := srv.Stats().Requests
	if got := f.calls(t, 30); got[500] != members*30 {
		t.Errorf("outage: statuses %v, want %d 500s", got, members*30)
	}
	retries := srv.Stats().Requests - before - members*30
	if retries != members*resilient.DefaultRetryBudgetBurst {
		t.Errorf("%d retries in an outage with Redis down, want %d (Burst each, locally)", retries, members*resilient.DefaultRetryBudgetBurst)
	}
	for i, s := range f.stores {
		waitFor(t, "member "+strconv.Itoa(i)+"'s Redis calls fail", func() bool { return s.Stats().Errors > 0 })
		if st := s.Stats(); st.BudgetSyncs != 0 {
			t.Errorf("member %d: stats %+v, want no sync", i, st)
		}
	}
}

// TestFleetBudgetRedisRestart proves that the budgets go on locally while
// Redis is stopped, with no call failing, and are shared again once it is
// back: the members sync, and their views meet Redis's balance.
func TestFleetBudgetRedisRestart(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	const members = 2
	f := newBudgetFleet(t, members, rs.addr(), prefix, srv)
	f.waitMembers(t)
	outage(srv)
	f.calls(t, 20)
	for i := range members {
		waitFor(t, "member "+strconv.Itoa(i)+" sees the budget spent", func() bool { return f.view(i) < 1 })
	}

	rs.stop()
	waitFor(t, "member 0's budgets go local", f.stores[0].BudgetsLocal)
	srv.SetScript(resilienttest.RouteUsage)
	v0 := f.view(0)
	if got := f.calls(t, 30, 0); got[200] != 30 {
		t.Errorf("Redis down: statuses %v, want 30 200s", got)
	}
	if v := f.view(0); v-v0 < 5.99 {
		t.Errorf("Redis down: member 0's view went from %v to %v with 30 answers, want 6 tokens more, deposited locally", v0, v)
	}
	outage(srv)
	before := srv.Stats().Requests
	if got := f.calls(t, 10, 0); got[500] != 10 {
		t.Errorf("Redis down, outage: statuses %v, want 10 500s", got)
	}
	if n := srv.Stats().Requests - before; n <= 10 {
		t.Errorf("Redis down: member 0 made %d attempts for 10 calls, want retries paid by its local deposits", n)
	}
	if n := f.stores[0].Stats().BudgetLocal; n == 0 {
		t.Error("no retry counted as allowed locally while Redis was down")
	}

	rs.start()
	syncs := []int64{f.stores[0].Stats().BudgetSyncs, f.stores[1].Stats().BudgetSyncs}
	f.calls(t, 1) // in use again
	for i, s := range f.stores {
		waitFor(t, "member "+strconv.Itoa(i)+" syncs again", func() bool { return s.Stats().BudgetSyncs > syncs[i] })
	}
	rdb := newRedis(t, rs.addr())
	key := f.stores[0].BudgetKey(f.name)
	for i := range members {
		waitFor(t, "member "+strconv.Itoa(i)+"'s view meets Redis's", func() bool {
			bal, err := rdb.HGet(context.Background(), key, "bal").Int64()
			v, synced, _ := f.stores[i].BudgetView(f.name)
			return err == nil && float64(bal)/1000 == synced && v == synced
		})
	}
}

// TestBudgetAfterClose proves that a closed Store's budgets keep
// answering, from the member's view alone.
func TestBudgetAfterClose(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	b := s.Budget("https://api.example.com:443", resilient.RetryBudget{Ratio: 0.2, Burst: 3, ThrottledCost: 0.1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for b.Withdraw(1) {
		n++
	}
	if n != 3 {
		t.Errorf("%d withdrawals from a closed Store's full budget of 3, want 3", n)
	}
	for range 5 {
		b.Deposit(0.2)
	}
	if !b.Withdraw(1) || b.Withdraw(0.1) {
		t.Error("5 deposits of a fifth after Close do not pay for exactly one retry")
	}
	if st := s.Stats(); st.BudgetLocal != 4 {
		t.Errorf("BudgetLocal %d, want 4", st.BudgetLocal)
	}
}

// TestBudgetSpendingReachesMembers proves that a member whose view is full
// learns, through the fleet's channel, that another started spending the
// budget, so that its own answers refill it; and that the member that spent
// learns of the refill. Two Stores with one member id (WithMemberID) learn
// it as well: a Store ignores its own messages, not its member id's.
func TestBudgetSpendingReachesMembers(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []redisquota.Option
	}{
		{"members of their own", nil},
		{"one member id", []redisquota.Option{redisquota.WithMemberID("a")}},
	} {
		t.Run(tc.name, func(t *testing.T) { testBudgetSpendingReachesMembers(t, tc.opts...) })
	}
}

func testBudgetSpendingReachesMembers(t *testing.T, opts ...redisquota.Option) {
	addr := redisAddr()
	const name = "https://api.example.com:443"
	stores, budgets := twoMembersBudget(t, name, opts...)
	view := func(i int) float64 {
		v, _, _ := stores[i].BudgetView(name)
		return v
	}
	for i := range stores {
		waitFor(t, "the first sync", func() bool { return stores[i].Stats().BudgetSyncs > 0 })
	}
	syncs := stores[1].Stats().BudgetSyncs
	if first, second := budgets[0].Withdraw(1), budgets[0].Withdraw(1); !first || !second {
		t.Fatal("a full budget refused 2 retries")
	}
	waitFor(t, "member 1 learns member 0's spending", func() bool { return view(1) == 8 })
	if n := stores[1].Stats().BudgetSyncs - syncs; n < 1 {
		t.Errorf("member 1 learned without a sync (%d)", n)
	}
	for range 10 {
		budgets[1].Deposit(0.2)
	}
	waitFor(t, "member 0 learns member 1's deposits", func() bool { return view(0) == 10 })
	bal, err := newRedis(t, addr).HGet(context.Background(), stores[0].BudgetKey(name), "bal").Int64()
	if err != nil || bal != 10000 {
		t.Errorf("Redis holds %d, %v; want a full budget, 10000", bal, err)
	}
}

// TestBudgetMemberRestart proves that a Store that starts with the member
// id of one closed before it (WithMemberID, as a restarted process) leaves
// the fleet's balance where it was: the running totals the sync script
// keeps are the closed Store's own, not its member id's. The first Store
// withdraws 4 tokens; the second, once it synced, finds the balance at 6
// and deposits 3; the third finds it at 9. Keyed by the member id, the
// second Store's first sync would have been read as a deposit of 4 (the
// first's withdrawals undone), and the third's as a withdrawal of 3.
func TestBudgetMemberRestart(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	const name = "https://api.example.com:443"
	settings := resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}
	rdb := newRedis(t, addr)
	balance := func(s *redisquota.Store) int64 {
		bal, _ := rdb.HGet(context.Background(), s.BudgetKey(name), "bal").Int64()
		return bal
	}
	// start returns a new Store of member "a" and its budget, once its first
	// sync returned the fleet's balance, which it checks is still want.
	start := func(i int, want int64) (*redisquota.Store, resilient.SharedBudget) {
		s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithMemberID("a"))
		t.Cleanup(func() { s.Close() })
		b := s.Budget(name, settings)
		waitFor(t, "Store "+strconv.Itoa(i)+"'s first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
		if got := balance(s); got != want {
			t.Errorf("Store %d of member a: the fleet's balance is %d after its first sync, want %d as before it started", i, got, want)
		}
		if v, synced, _ := s.BudgetView(name); v != synced || synced != float64(want)/1000 {
			t.Errorf("Store %d of member a: view %v, synced %v; want %v", i, v, synced, float64(want)/1000)
		}
		return s, b
	}
	// settle waits until s's changes reached Redis, and the balance is want.
	settle := func(s *redisquota.Store, want int64) {
		waitFor(t, "the balance at "+strconv.FormatInt(want, 10), func() bool {
			v, synced, _ := s.BudgetView(name)
			return v == synced && balance(s) == want
		})
	}

	s0, b0 := start(0, 10000)
	for range 4 {
		if !b0.Withdraw(1) {
			t.Fatal("a full budget of 10 refused one of 4 retries")
		}
	}
	settle(s0, 6000)
	s0.Close()

	s1, b1 := start(1, 6000)
	for range 15 {
		b1.Deposit(0.2)
	}
	settle(s1, 9000)
	s1.Close()

	s2, b2 := start(2, 9000)
	n := 0
	for b2.Withdraw(1) {
		n++
	}
	if n != 9 {
		t.Errorf("Store 2 of member a was allowed %d retries from the fleet's 9 tokens, want 9", n)
	}
	settle(s2, 0)
}

// TestBudgetSyncOnce proves that a member's change to a budget is applied
// once when the sync that sent it ran in Redis but its reply was lost: the
// member sends it again with its next sync, with what it changed since
// (here 3 withdrawals, then 1), and the script recognizes it.
func TestBudgetSyncOnce(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	// EVALSHA sha 2 key fields-key field cum delta ...
	h := replyDropper{pipe: func(a []any) bool {
		return len(a) > 7 && a[1] == redisquota.BudgetHash && fmt.Sprint(a[7]) != "0"
	}}
	s := redisquota.New(newRedis(t, addr, &h), redisquota.WithPrefix(prefix))
	defer s.Close()
	const name = "https://api.example.com:443"
	b := s.Budget(name, resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1})
	waitFor(t, "the first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	for range 3 {
		if !b.Withdraw(1) {
			t.Fatal("a full budget of 10 refused one of 3 retries")
		}
	}
	waitFor(t, "the sync of the 3 withdrawals ran, its reply lost", func() bool {
		dropped, _ := h.counts()
		return dropped
	})
	if !b.Withdraw(1) {
		t.Fatal("a budget of 7 refused a retry")
	}
	rdb := newRedis(t, addr)
	waitFor(t, "the withdrawals sent again", func() bool {
		_, delivered := h.counts()
		v, synced, _ := s.BudgetView(name)
		return delivered > 0 && v == synced
	})
	if bal, err := rdb.HGet(context.Background(), s.BudgetKey(name), "bal").Int64(); err != nil || bal != 6000 {
		t.Errorf("the balance is %d, %v after 4 withdrawals, 3 of them sent twice; want 6000", bal, err)
	}
	if v, _, _ := s.BudgetView(name); v != 6 {
		t.Errorf("the member's view is %v, want 6", v)
	}
}

// TestBudgetMadeAgain proves that a budget a Store forgot (dropped to make
// room, and collected once nothing held it) and makes again leaves the fleet's balance where it was: the new
// budget's running total is its own, not the forgotten one's.
func TestBudgetMadeAgain(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	defer s.Close()
	const name = "https://api.example.com:443"
	settings := resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}
	rdb := newRedis(t, addr)
	b := s.Budget(name, settings)
	waitFor(t, "the first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	for range 4 {
		if !b.Withdraw(1) {
			t.Fatal("a full budget of 10 refused one of 4 retries")
		}
	}
	balance := func() int64 {
		bal, _ := rdb.HGet(context.Background(), s.BudgetKey(name), "bal").Int64()
		return bal
	}
	waitFor(t, "the withdrawals synced", func() bool {
		v, synced, _ := s.BudgetView(name)
		return v == synced && balance() == 6000
	})
	if !s.ForgetBudget(name) {
		t.Fatal("the Store did not hold the budget")
	}
	b = nil
	waitFor(t, "the budget collected", func() bool {
		runtime.GC()
		_, budgets := s.DroppedHeld()
		return budgets == 0
	})
	syncs := s.Stats().BudgetSyncs
	s.Budget(name, settings)
	waitFor(t, "the new budget's first sync", func() bool { return s.Stats().BudgetSyncs > syncs })
	if got := balance(); got != 6000 {
		t.Errorf("the balance is %d after the budget was made again, want 6000 as before", got)
	}
	if v, synced, _ := s.BudgetView(name); v != 6 || synced != 6 {
		t.Errorf("the new budget's view %v, synced %v; want 6", v, synced)
	}
}

// TestBudgetHealthyHostNoSync proves what the README says of the shared
// retry budget, "none [no Redis call] while every host is healthy": once a
// member loaded a healthy host's budget, full, its answers cost no sync,
// however many: the view stays full and the syncer passes it over, tick
// after tick. (A resync after a pub/sub reconnection syncs every budget
// once: a member that resynced meanwhile is not counted.)
func TestBudgetHealthyHostNoSync(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	srv := resilienttest.NewServer(resilienttest.Altyaa)
	defer srv.Close()
	f := newBudgetFleet(t, 2, addr, prefix, srv)
	if got := f.calls(t, 10); got[200] != 20 {
		t.Fatalf("healthy server: statuses %v, want 20 200s", got)
	}
	var before, resyncs []int64
	for i, s := range f.stores {
		waitFor(t, "member "+strconv.Itoa(i)+"'s first sync", func() bool {
			v, synced, _ := s.BudgetView(f.name)
			return s.Stats().BudgetSyncs > 0 && v == synced
		})
		before = append(before, s.Stats().BudgetSyncs)
		resyncs = append(resyncs, s.Stats().Resyncs)
	}
	calls := 0
	for end := time.Now().Add(5 * redisquota.DefaultBudgetSync); time.Now().Before(end); calls += 20 {
		if got := f.calls(t, 10); got[200] != 20 {
			t.Fatalf("healthy server: statuses %v, want 20 200s", got)
		}
	}
	for i, s := range f.stores {
		if st := s.Stats(); st.BudgetSyncs != before[i] && st.Resyncs == resyncs[i] {
			n := st.BudgetSyncs - before[i]
			t.Errorf("member %d: %d budget syncs during %d calls to a healthy host, want none", i, n, calls)
		}
	}
}

// TestBudgetRegainsWhenIdle: a member's retry budget spent by an outage,
// then not used for an hour (a quiet host). A Transport without a store
// regains a retry for each ten minutes its host's budget was not used
// (resilient.RetryBudget), so that the first failures after a quiet spell
// are retried; so must a member. Here the member's Redis does not answer
// (in a synctest bubble, whose clock is not Redis's): the budget is the
// member's alone, "as the local budget of a Transport without a store".
// (Its view never regained: nor did a view synced with a fleet's balance
// that the outage spent, the balance in Redis staying spent for the day it
// lives while no answer refilled it.)
func TestBudgetRegainsWhenIdle(t *testing.T) {
	unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
		spent := 0
		for b.Withdraw(1) {
			spent++
		}
		time.Sleep(time.Hour)
		regained := 0
		for b.Withdraw(1) {
			regained++
		}
		if regained != 6 {
			t.Errorf("after %d retries spent its budget, an hour unused regained %d retries, want 6", spent, regained)
		}
	})
}

// TestFleetBudgetRegainsWhenIdle: the fleet's balance of a host's retry
// budget was spent by an outage, and the member's view synced with it;
// then the member does not use the budget for an hour (the time moved
// back in the member's view: Redis's clock cannot be). Its first failures
// are retried, six of them, as a Transport without a store's would be.
func TestFleetBudgetRegainsWhenIdle(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	const name = "https://api.example.com:443"
	if err := rdb.HSet(context.Background(), s.BudgetKey(name), "bal", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := s.Budget(name, resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1})
	waitFor(t, "the spent balance synced", func() bool {
		_, synced, _ := s.BudgetView(name)
		return synced == 0 && redisquota.View(b) == 0
	})
	redisquota.Unused(b, time.Hour)
	regained := 0
	for b.Withdraw(1) {
		regained++
	}
	if regained != 6 {
		t.Errorf("an hour unused regained %d retries of the fleet's spent budget, want 6", regained)
	}
}

// TestFleetBudgetOutageNoRegainForHealthyMembers: two members share a
// host's retry budget, healthy for two hours (answers into a full view,
// which mark nothing used). An outage starts: member 0's retries spend the
// fleet's balance, and member 1's view syncs down to it. Member 1's first
// failures come a moment later. The fleet has been spending the budget
// all along: member 1 must not regain a retry (one per ten minutes that
// neither it nor the fleet used the budget). Member 1 regained a whole
// Burst, its view counted idle since it was made, and deposited it into
// the fleet's balance: each member whose first failure came after the
// balance fell retried a Burst of its own, an outage costing a fleet of N
// members N Bursts, not one.
func TestFleetBudgetOutageNoRegainForHealthyMembers(t *testing.T) {
	addr := redisAddr()
	const name = "https://api.example.com:443"
	stores, budgets := twoMembersBudget(t, name)
	for i := range stores {
		waitFor(t, "the first sync", func() bool { return stores[i].Stats().BudgetSyncs > 0 })
		redisquota.Unused(budgets[i], 2*time.Hour)
	}
	rdb := newRedis(t, addr)
	spent := 0
	waitFor(t, "member 0 spends the fleet's balance", func() bool {
		if budgets[0].Withdraw(1) {
			spent++
		}
		bal, err := rdb.HGet(context.Background(), stores[0].BudgetKey(name), "bal").Int64()
		return err == nil && bal == 0
	})
	waitFor(t, "member 1's view synced with the spent balance", func() bool {
		v, synced, _ := stores[1].BudgetView(name)
		return v == 0 && synced == 0
	})
	regained := 0
	for range 20 {
		if budgets[1].Withdraw(1) {
			regained++
		}
	}
	if regained != 0 {
		t.Errorf("member 1 retried %d times into the outage whose %d retries just spent the fleet's balance, want 0", regained, spent)
	}
}

// TestBudgetDepositAfterIdleKeepsRegain: a member's view spent by an
// outage, then not used for two hours (a quiet host); the host's first
// call then succeeds (a deposit), and its next fails. A Transport without
// a store regains its Burst before it credits that answer
// (resilient.RetryBudget), and retries the failure; so must a member. The
// deposit marked the view used without regaining: the idle time was lost,
// and the failure's retry refused.
func TestBudgetDepositAfterIdleKeepsRegain(t *testing.T) {
	unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
		for b.Withdraw(1) {
		}
		time.Sleep(2 * time.Hour)
		b.Deposit(0.2)
		retried := 0
		for b.Withdraw(1) {
			retried++
		}
		if retried != 10 {
			t.Errorf("after two hours unused and one answer, %d retries, want 10", retried)
		}
	})
}

// unreachableBudget runs f in a synctest bubble with the retry budget of a
// host (Ratio 0.2, Burst 10) of a Store whose Redis does not answer: the
// budget is the member's alone, on the bubble's clock.
func unreachableBudget(t *testing.T, f func(t *testing.T, b resilient.SharedBudget)) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	synctest.Test(t, func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		s := redisquota.New(rdb)
		defer func() {
			s.Close()
			rdb.Close()
			time.Sleep(2 * time.Second) // go-redis's dialer looks at its pool once a second
		}()
		f(t, s.Budget("https://api.example.com:443", resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}))
	})
}

// twoMembersBudget returns two Stores with opts under one prefix of the
// test's Redis (closed when the test ends), and each one's retry budget of
// the host name (Ratio 0.2, Burst 10).
func twoMembersBudget(t *testing.T, name string, opts ...redisquota.Option) ([]*redisquota.Store, []resilient.SharedBudget) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	settings := resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}
	var stores []*redisquota.Store
	var budgets []resilient.SharedBudget
	for range 2 {
		s := redisquota.New(newRedis(t, addr), append([]redisquota.Option{redisquota.WithPrefix(prefix)}, opts...)...)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
		budgets = append(budgets, s.Budget(name, settings))
	}
	return stores, budgets
}

// TestBudgetFineRatio: a fleet budget's Ratio or ThrottledCost finer than
// its unit (a thousandth of a retry) counts what it says: deposits of a
// retry per 2,500 answers pay for one retry after 2,500 answers (each
// rounded to nothing, they paid for none, and a host whose budget an
// outage spent was never retried again while called; a Ratio of 0.0005
// paid twice itself), and a retry that costs a ten-thousandth costs that
// (it cost nothing: the budget bounded no throttled retry; then a whole
// thousandth, ten times itself, so that 3 thousandths paid for 3 such
// retries, not 30, and a retry given back lost nine tenths of it: see
// TestBudgetGiveBackFineCost).
func TestBudgetFineRatio(t *testing.T) {
	unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
		for b.Withdraw(1) {
		}
		for _, tc := range []struct {
			ratio   float64
			answers int // that pay for one retry
		}{{0.0004, 2500}, {0.0005, 2000}} {
			for range tc.answers - 1 {
				b.Deposit(tc.ratio)
			}
			if b.Withdraw(1) {
				t.Errorf("Ratio %v: %d answers paid for a retry, want %d", tc.ratio, tc.answers-1, tc.answers)
			}
			b.Deposit(tc.ratio)
			if !b.Withdraw(1) {
				t.Errorf("Ratio %v: %d answers paid for no retry, want one", tc.ratio, tc.answers)
			}
		}
		for range 3 {
			b.Deposit(0.001) // 3 units
		}
		n := 0
		for n < 100 && b.Withdraw(1e-4) {
			n++
		}
		if n != 30 {
			t.Errorf("3 thousandths of a retry paid for %d throttled retries at a ten-thousandth, want 30", n)
		}
	})
}

// tokensOf returns an exact amount of a budget (see redisquota.Exact) in
// tokens, for messages.
func tokensOf(exact int64) float64 { return float64(exact) / redisquota.PartsPerToken }

// TestBudgetGiveBackFineCost: a fleet budget's retries are withdrawn, then
// given back (retries never sent: refused below the budget, or hedged
// copies not sent), one Deposit of the same tokens each: the budget is
// restored exactly, whatever the cost, from a full view and from one a
// Ratio finer than a unit left carrying a part. A withdrawal finer than a
// unit cost a whole unit, and its give-back credited its part alone: each
// throttled retry at 1e-4 given back lost nine tenths of what it took.
func TestBudgetGiveBackFineCost(t *testing.T) {
	for _, cost := range []float64{1e-4, 3.7e-4, 1e-6, 0.0012345, 0.1, 1} {
		for _, from := range []string{"full", "carrying"} {
			t.Run(fmt.Sprintf("%v/%s", cost, from), func(t *testing.T) {
				unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
					if from == "carrying" {
						for range 3 {
							b.Withdraw(1)
						}
						for range 7 {
							b.Deposit(0.0004) // 2.8 units: 0.8 carried
						}
					}
					before := redisquota.Exact(b)
					n := 0
					for n < 1000 && b.Withdraw(cost) {
						n++
					}
					if n == 0 {
						t.Fatalf("no withdrawal of %v from %v tokens", cost, tokensOf(before))
					}
					for range n {
						b.Deposit(cost)
					}
					if got := redisquota.Exact(b); got != before {
						t.Errorf("%d withdrawals of %v given back: %v tokens, want %v as before", n, cost, tokensOf(got), tokensOf(before))
					}
				})
			})
		}
	}
}

// TestBudgetFineCostConcurrent: many goroutines withdraw fine and whole
// costs from a fleet budget, give them back and deposit fine Ratios, all at
// once (the view never reaching the burst, which would cap it): what the
// member holds in the end is what it held plus the deposits, exactly. The
// carried parts of a unit lose nothing to a race.
func TestBudgetFineCostConcurrent(t *testing.T) {
	costs := []float64{1e-4, 3.7e-4, 1e-6, 0.0012345, 0.1, 1}
	ratios := []float64{0.0004, 0.00037, 1e-6, 0.2}
	const workers, rounds = 8, 2000
	unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
		for range 5 {
			b.Withdraw(1)
		}
		before := redisquota.Exact(b)
		deposited := make([]int64, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := mrand.New(mrand.NewPCG(1, uint64(w)))
				var held []float64
				for range rounds {
					switch r.IntN(4) {
					case 0:
						c := ratios[r.IntN(len(ratios))]
						if c == 0.2 && r.IntN(100) != 0 {
							continue // a few: the deposits stay below the burst
						}
						b.Deposit(c)
						deposited[w] += int64(math.Round(c * redisquota.PartsPerToken))
					case 1:
						if len(held) > 0 {
							b.Deposit(held[len(held)-1])
							held = held[:len(held)-1]
						}
					default:
						if c := costs[r.IntN(len(costs))]; b.Withdraw(c) {
							held = append(held, c)
						}
					}
				}
				for _, c := range held {
					b.Deposit(c)
				}
			}()
		}
		wg.Wait()
		want := before
		for _, d := range deposited {
			want += d
		}
		if want >= 10*redisquota.PartsPerToken {
			t.Fatalf("the deposits reach the burst: %v tokens", tokensOf(want))
		}
		if got := redisquota.Exact(b); got != want {
			t.Errorf("after %d workers' withdrawals given back and deposits: %v tokens, want %v", workers, tokensOf(got), tokensOf(want))
		}
	})
}

// TestBudgetAbsurdTokens: a fleet budget given amounts no Transport
// sends (a SharedBudget's caller may be any code): a withdrawal of NaN, of
// less than zero or of more than the burst is refused and spends nothing;
// a deposit of NaN or of less than zero credits nothing, and one of +Inf or
// of more than the burst fills the view. Converted to units as they were,
// undefined in Go (a negative number on amd64), a withdrawal of 1e300 or
// +Inf was allowed, one of NaN or -1 added tokens, and a deposit of NaN,
// +Inf or -1 took them.
func TestBudgetAbsurdTokens(t *testing.T) {
	const half = 5 * redisquota.PartsPerToken // what the budget holds (Burst 10)
	for _, tc := range []struct {
		op     string
		tokens float64
		want   int64 // held after
	}{
		{"Withdraw", math.NaN(), half},
		{"Withdraw", -1, half},
		{"Withdraw", math.Inf(-1), half},
		{"Withdraw", math.Inf(1), half},
		{"Withdraw", 1e300, half},
		{"Withdraw", 1 << 63, half},
		{"Withdraw", 10.5, half},
		{"Deposit", math.NaN(), half},
		{"Deposit", -1, half},
		{"Deposit", -1e300, half},
		{"Deposit", math.Inf(-1), half},
		{"Deposit", math.Inf(1), 2 * half},
		{"Deposit", 1e300, 2 * half},
		{"Deposit", 1 << 63, 2 * half},
		{"Deposit", 1e12, 2 * half},
	} {
		t.Run(fmt.Sprintf("%s(%v)", tc.op, tc.tokens), func(t *testing.T) {
			unreachableBudget(t, func(t *testing.T, b resilient.SharedBudget) {
				for range 5 {
					b.Withdraw(1)
				}
				if tc.op == "Withdraw" {
					if b.Withdraw(tc.tokens) {
						t.Errorf("Withdraw(%v) allowed, want refused", tc.tokens)
					}
				} else {
					b.Deposit(tc.tokens)
				}
				if got, view := redisquota.Exact(b), redisquota.View(b); got != tc.want || view != tokensOf(tc.want) {
					t.Errorf("%s(%v) from 5 tokens: view %v tokens (%v held in all), want %v", tc.op, tc.tokens, view, tokensOf(got), tokensOf(tc.want))
				}
				n := 0
				for n < 20 && b.Withdraw(1) {
					n++
				}
				if want := int(tc.want / redisquota.PartsPerToken); n != want {
					t.Errorf("%s(%v) from 5 tokens, then %d retries, want %d", tc.op, tc.tokens, n, want)
				}
			})
		})
	}
}
