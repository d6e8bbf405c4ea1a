package redisquota_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// quota is a learned quota of limit per window, with nothing announced of
// what remains.
func quota(limit int) resilient.RateLimitInfo {
	return resilient.RateLimitInfo{Limit: limit, Remaining: -1}
}

// takeToken takes a token of q, waiting as Take says (at most 10s), then
// for the token's delay, which it returns.
func takeToken(t *testing.T, q resilient.QuotaPartition) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, retry := q.Take(time.Now())
		if ok {
			time.Sleep(d)
			return d
		}
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-retry:
		}
		timer.Stop()
	}
	t.Fatal("no token in 10s")
	return 0
}

// waitBound bounds each wait of a test for something Redis or the fleet's
// channel brings: far longer than any of them takes on a loaded machine (a
// pub/sub reconnection and the resync after it take seconds at most), far
// shorter than the test binary's timeout, so that a condition that never
// holds fails its test, with what it waited for, instead of the binary.
const waitBound = 30 * time.Second

// waitFor polls cond every millisecond until it holds, and returns how long
// it took. It asserts no speed: a condition that does not hold within
// waitBound (or by the test's deadline, if sooner) fails the test, with
// what it waited for.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	end := start.Add(waitBound)
	if deadline, ok := t.Deadline(); ok && deadline.Add(-time.Second).Before(end) {
		end = deadline.Add(-time.Second)
	}
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestLeasedTokensCostNoRoundTrip proves the lease: once a lease arrived,
// the member takes its tokens without a Redis call, paced one interval
// apart (at 95% of the quota: 400 tokens take at least 400 intervals, less
// what a lease lets a late taker catch up), and asks for the next lease
// once per lease.
func TestLeasedTokensCostNoRoundTrip(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rt := scriptCounter{leases: make(chan struct{})} // the state read waits for the first Take
	rdb := newRedis(t, addr, &rt)
	s := redisquota.New(rdb, redisquota.WithPrefix(prefix))
	defer s.Close()
	q := s.Partition("https://api.example.com reads")
	if d, ok, retry := q.Take(time.Now()); ok || d <= 0 || retry == nil {
		t.Fatalf("Take before the state is read = %v, %v, %v; want a wait for it", d, ok, retry)
	}
	close(rt.leases)
	waitFor(t, "the state read", func() bool { return redisquota.StateRead(q) })
	if d, ok, _ := q.Take(time.Now()); !ok || d != 0 {
		t.Fatalf("Take before any quota is known = %v, %v; want unpaced", d, ok)
	}
	q.Learn(quota(950), time.Second) // a token every 1.108ms
	takeToken(t, q)
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > 0 })

	// Leases start at one token and double up to the member's share of
	// 200ms: 190 tokens.
	for range 300 {
		takeToken(t, q)
	}
	before, leases := rt.count(), s.Stats().Leases
	const taken = 400
	start := time.Now()
	for range taken {
		takeToken(t, q)
	}
	// Paced: the last token conforms taken-1 intervals after the first,
	// which conformed at most a lease's expiry (a quarter of the 200ms
	// lease time) before it was taken. A busy machine makes the loop
	// longer, never shorter; without pacing it would take no time.
	interval := time.Duration(math.Round(float64(time.Second) / (0.95 * 950)))
	if elapsed, least := time.Since(start), time.Duration(0.9*float64((taken-1)*interval))-50*time.Millisecond; elapsed < least {
		t.Errorf("%d tokens taken in %v, want at least %v at one per %v", taken, elapsed, least, interval)
	}
	calls := rt.count() - before
	newLeases := s.Stats().Leases - leases
	if calls > taken/10 || int64(calls) > newLeases+3 {
		t.Errorf("%d tokens taken with %d Redis calls (%d leases), want at most %d", taken, calls, newLeases, taken/10)
	}
	t.Logf("%d tokens at steady state: %d Redis calls, %d leases", taken, calls, newLeases)
	st := s.Stats()
	if st.Tokens < 700 || st.Errors != 0 || st.Unpaced != 1 {
		t.Errorf("stats %+v after 700 tokens taken", st)
	}
}

// TestLearnedQuotaReachesMembers proves that a quota learned by one member
// is written once and used by another that never learned it.
func TestLearnedQuotaReachesMembers(t *testing.T) {
	f := twoMembers(t)
	a, b, rtA, rtB, addr, prefix := f.a, f.b, f.rtA, f.rtB, f.addr, f.prefix
	const name = "key-1"
	qa, qb := a.Partition(name), b.Partition(name)
	for range 100 {
		qa.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 90, Reset: time.Now().Add(time.Second)}, time.Second)
	}
	waitFor(t, "B paces by A's quota", func() bool {
		d, ok, _ := qb.Take(time.Now())
		return redisquota.StateRead(qb) && (!ok || d > 0) || b.Stats().Tokens > 0
	})
	if n := rtA.script(redisquota.LearnHash); n != 1 {
		t.Errorf("A wrote its quota %d times for 100 learns, want 1", n)
	}
	if n := rtB.script(redisquota.LearnHash); n != 0 {
		t.Errorf("B, which learned nothing, wrote a quota %d times", n)
	}
	// B learns the same quota: nothing to write.
	for range 10 {
		qb.Learn(quota(100), time.Second)
	}
	time.Sleep(50 * time.Millisecond)
	if n := rtB.script(redisquota.LearnHash); n > 1 {
		t.Errorf("B wrote the quota it shares %d times", n)
	}
	rdb := newRedis(t, addr)
	var keys []string
	iter := rdb.Scan(context.Background(), 0, prefix+":{*}", scanPage).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	var found bool
	for _, k := range keys {
		if v, _ := rdb.HGet(context.Background(), k, "limit").Result(); v == "100" {
			w, _ := rdb.HGet(context.Background(), k, "window").Result()
			found = w == "1000000"
		}
	}
	if !found {
		t.Errorf("no state with limit 100 and a window of 1000000µs among %q", keys)
	}
}

// TestPauseReachesMembers proves that a pause set by one member reaches
// the others through pub/sub, without a lease: their Take refuses tokens
// until it ends, and their leases held are dropped.
func TestPauseReachesMembers(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	stores := make([]*redisquota.Store, 3)
	parts := make([]resilient.QuotaPartition, 3)
	for i := range stores {
		stores[i] = redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
		defer stores[i].Close()
		parts[i] = stores[i].Partition("p")
		parts[i].Learn(quota(1000), time.Second)
		takeToken(t, parts[i])
	}
	until := time.Now().Add(3 * time.Second)
	parts[0].Pause(until)
	if got := parts[0].PauseUntil(); !got.Equal(until) {
		t.Fatalf("the member that paused sees %v, want %v at once", got, until)
	}
	for i := 1; i < 3; i++ {
		lat := waitFor(t, "the pause reaches member "+string(rune('0'+i)), func() bool {
			return !parts[i].PauseUntil().Before(until)
		})
		t.Logf("member %d saw the pause after %v", i, lat)
		if got := parts[i].PauseUntil(); got.After(until.Add(time.Second)) {
			t.Errorf("member %d: pause until %v, want about %v", i, got, until)
		}
		if d, ok, _ := parts[i].Take(time.Now()); ok || d <= 0 {
			t.Errorf("member %d: Take during the pause = %v, %v; want a refusal", i, d, ok)
		}
		// The member may have read the pause first in the reply of a
		// lease its refiller asked for meanwhile; the message comes all
		// the same (or a resync, if the connection was lost).
		waitFor(t, "member "+string(rune('0'+i))+" receives the pause through pub/sub, or resyncs", func() bool {
			st := stores[i].Stats()
			return st.PausesReceived >= 1 || st.Resyncs > 0
		})
	}
	// The script tells the fleet before its reply reaches member 0.
	waitFor(t, "member 0's write counted", func() bool { return stores[0].Stats().PausesSent > 0 })
	if n := stores[0].Stats().PausesSent; n != 1 {
		t.Errorf("member 0 wrote %d pauses, want 1", n)
	}
	// An earlier pause changes nothing.
	parts[1].Pause(until.Add(-time.Second))
	if got := parts[1].PauseUntil(); got.Before(until) {
		t.Errorf("an earlier pause moved the pause to %v", got)
	}
}

// arrivals records when each request reached a resilienttest server and
// when each 429 left it (see resilienttest.WithExchanges).
type arrivals struct {
	mu  sync.Mutex
	in  []time.Time
	out []time.Time // when each 429 was answered
}

func (a *arrivals) add(e resilienttest.Exchange) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.in = append(a.in, e.Arrived)
	if e.Status == http.StatusTooManyRequests {
		a.out = append(a.out, e.Answered)
	}
}

func (a *arrivals) snapshot() (in, out []time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.in...), append([]time.Time(nil), a.out...)
}

func getOK(t *testing.T, client *http.Client, url string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Errorf("GET: %v", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
}

// TestTransportsSharePause proves the whole path through two Transports,
// each with a Store of its own: a 429 with Retry-After received by one
// holds back the other's next request until the pause ends.
func TestTransportsSharePause(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rec := &arrivals{}
	api := resilienttest.NewPipeServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 1000, ResetFormat: resilienttest.IETF}),
		resilienttest.WithScript(resilienttest.RouteUsage,
			resilienttest.Normal(), resilienttest.Normal(), resilienttest.RateLimited(2*time.Second)),
		resilienttest.WithExchanges(rec.add))
	defer api.Close()
	srv := httptest.NewServer(api)
	defer srv.Close()
	url := srv.URL + "/v1/usage"
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	sa := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer sa.Close()
	sb := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer sb.Close()
	a := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(sa), resilient.WithRateLimitKey(func(*http.Request) string { return "key" }))}
	b := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(sb), resilient.WithRateLimitKey(func(*http.Request) string { return "key" }))}

	getOK(t, a, url)
	getOK(t, b, url)
	done := make(chan struct{})
	go func() { defer close(done); getOK(t, a, url) }() // 429, Retry-After 2, then its retry
	waitFor(t, "B sees the pause", func() bool { return sb.Partition("key").PauseUntil().After(time.Now()) })
	getOK(t, b, url)
	<-done
	in, out := rec.snapshot()
	if len(out) != 1 || len(in) != 5 {
		t.Fatalf("server: %d requests, %d 429s; want 5 and 1", len(in), len(out))
	}
	for i, at := range in[3:] {
		if at.Before(out[0].Add(2 * time.Second)) {
			t.Errorf("request %d arrived %v after the 429, within its 2s pause", i+4, at.Sub(out[0]))
		}
	}
}

// TestFallbackClosedPort proves that a Store whose Redis refuses every
// connection never fails a call: it paces locally, at the quota the
// Transport learned, and the server sends no 429.
func TestFallbackClosedPort(t *testing.T) {
	rdb := newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:closed"))
	defer s.Close()
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 100, TimeScale: 60, ResetFormat: resilienttest.IETF}))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithQuotaStore(s))}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				getOK(t, client, srv.URL+"/v1/usage")
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Fallbacks == 0 || st.Errors == 0 || st.Leases != 0 {
		t.Errorf("stats %+v: want fallbacks and errors, no lease", st)
	}
	if n := srv.Stats().RateLimited; n > 1 {
		t.Errorf("the server sent %d 429s to a member pacing locally", n)
	}
}

// TestFallbackClientPause proves the fallback when Redis hangs (CLIENT
// PAUSE, held until the test lifts it): requests go on, paced locally,
// while it does not answer, and the member leases again once it does.
func TestFallbackClientPause(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix))
	defer s.Close()
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 200, TimeScale: 60, ResetFormat: resilienttest.IETF}))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithQuotaStore(s))}
	url := srv.URL + "/v1/usage"
	stop := make(chan struct{})
	var calls atomic.Int64
	var wg sync.WaitGroup
	untilStopped(&wg, stop, 4, func() {
		getOK(t, client, url)
		calls.Add(1)
	})
	waitFor(t, "leases", func() bool { return s.Stats().Leases >= 3 })
	admin := newRedis(t, rs.addr())
	// WRITE pauses every script (the leases) and leaves the admin's
	// CLIENT UNPAUSE through; the pause lasts until the test lifts it.
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	pausedAt, fb := time.Now(), s.Stats().Fallbacks
	waitFor(t, "a fallback", func() bool { return s.Stats().Fallbacks > fb })
	t.Logf("first token from the local limiter %v after CLIENT PAUSE", time.Since(pausedAt))
	during := calls.Load()
	waitFor(t, "20 calls while Redis hangs", func() bool { return calls.Load() >= during+20 })
	leases := s.Stats().Leases
	if err := admin.Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leases again", func() bool { return s.Stats().Leases > leases })
	close(stop)
	wg.Wait()
	if n := srv.Stats().RateLimited; n > 2 {
		t.Errorf("the server sent %d 429s", n)
	}
}

// TestRedisRestart proves that stopping Redis mid-run and starting it
// again fails no call, and that the members lease again afterwards.
func TestRedisRestart(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 300, TimeScale: 60, ResetFormat: resilienttest.IETF}))
	defer srv.Close()
	url := srv.URL + "/v1/usage"
	stores := make([]*redisquota.Store, 2)
	var failed, calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range stores {
		stores[i] = redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix))
		defer stores[i].Close()
		client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithQuotaStore(stores[i]))}
		untilStopped(&wg, stop, 4, func() {
			calls.Add(1)
			resp, err := client.Get(url)
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		})
	}
	leases := func() (n int64) {
		for _, s := range stores {
			n += s.Stats().Leases
		}
		return n
	}
	waitFor(t, "leases", func() bool { return leases() >= 6 })
	rs.stop()
	down := srv.Stats()
	time.Sleep(time.Second)
	during := srv.Stats()
	rs.start()
	before := leases()
	waitFor(t, "leases after the restart", func() bool { return leases() > before+2 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d calls failed", n, calls.Load())
	}
	att, rej := during.Requests-down.Requests, during.RateLimited-down.RateLimited
	t.Logf("while Redis was down: %d attempts, %d 429s (%.1f%%)", att, rej, 100*float64(rej)/float64(max(att, 1)))
}

// TestCloseStopsGoroutines proves that Close stops the refillers of busy
// partitions, the heartbeat and the pub/sub reader (TestMain's leak
// check proves it at the end), and that partitions keep answering after it.
func TestCloseStopsGoroutines(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	var parts []resilient.QuotaPartition
	for _, name := range []string{"a", "b", "c"} {
		q := s.Partition(name)
		q.Learn(quota(500), time.Second)
		takeToken(t, q)
		parts = append(parts, q)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, q := range parts {
		takeToken(t, q) // the local limiter
	}
	q := s.Partition("new after close")
	q.Learn(quota(10), time.Second)
	takeToken(t, q)
}

// TestPartitionsBoundedAfterClose proves that a closed Store holds no more
// partitions than an open one, for the Transports that still use it (a
// process draining its calls at shutdown, or one whose Store was replaced):
// a partition first used after Close stayed marked as running a refiller,
// which Close forbids, and only partitions without one are dropped to make
// room, so that every new partition name (a host, a credential) grew the
// Store's maps for as long as the Transports called.
func TestPartitionsBoundedAfterClose(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * redisquota.MaxPartitions {
		q := s.Partition("https://h" + strconv.Itoa(i) + ".example.com reads")
		if d, ok, _ := q.Take(time.Now()); !ok || d != 0 {
			t.Fatalf("Take of a new partition after Close = %v, %v; want 0, true (no quota known)", d, ok)
		}
	}
	if n := s.PartitionsHeld(); n > redisquota.MaxPartitions {
		t.Errorf("a closed Store holds %d partitions after %d were used, want at most %d", n, 2*redisquota.MaxPartitions, redisquota.MaxPartitions)
	}
}

// TestMembersCounted proves the heartbeat: each Store is a member, several
// in one process included, and a closed one leaves.
func TestMembersCounted(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	var stores []*redisquota.Store
	for range 3 {
		stores = append(stores, redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(20*time.Millisecond)))
	}
	waitFor(t, "3 members", func() bool { return stores[0].Members() == 3 })
	if stores[0].MemberID() == stores[1].MemberID() {
		t.Errorf("two Stores share the member id %q", stores[0].MemberID())
	}
	stores[2].Close()
	waitFor(t, "2 members", func() bool { return stores[0].Members() == 2 })
	stores[0].Close()
	stores[1].Close()
}

var _ redis.Hook = (*scriptCounter)(nil)

// TestMembersCountedAcrossHeartbeats proves that a member counts the
// members whose heartbeat is slower than its own: each is counted for
// three of its own heartbeats (at most a minute), not of the counting
// member's. A member with WithHeartbeat(20ms) dropped the heartbeat of one
// with the default (1s) 60ms after it was written, and counted itself
// alone most of the time: it paced at the whole quota when Redis failed,
// and spent the whole retry budget before its sync, beside a member doing
// the same. A member with WithHeartbeat(30s), scored 90s ahead, further
// than the others believe (a minute), was dropped by each heartbeat of one
// with the default, and counted by none.
func TestMembersCountedAcrossHeartbeats(t *testing.T) {
	addr := redisAddr()
	for _, tc := range []struct{ fast, slow time.Duration }{
		{20 * time.Millisecond, redisquota.DefaultHeartbeat},
		{redisquota.DefaultHeartbeat, 30 * time.Second},
	} {
		prefix := testPrefix(t, addr)
		fast := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(tc.fast))
		defer fast.Close()
		slow := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(tc.slow))
		defer slow.Close()
		waitFor(t, fmt.Sprintf("2 members counted by the member with a %v heartbeat, beside one with %v", tc.fast, tc.slow), func() bool { return fast.Members() == 2 })
		alone := 0
		for range 150 { // 1.5s: more than a heartbeat of the fast member, and of the slow one if 1s
			if fast.Members() < 2 {
				alone++
			}
			time.Sleep(10 * time.Millisecond)
		}
		if alone > 0 {
			t.Errorf("beside a member with a %v heartbeat, the member with a %v heartbeat counted fewer than 2 members in %d of 150 looks", tc.slow, tc.fast, alone)
		}
	}
}

// TestDryBucketNoCallPerLook proves that while the fleet's bucket holds no
// token within a lease's reach, the attempts that look for a token do not
// each cost a Redis call: the refiller asks again when the fleet's next
// tokens come within reach. Each Take woke the refiller, which cut its wait
// short and asked Redis for a lease it refused again: about one Redis call
// per look of each waiting attempt (every WithFallbackAfter), 981 for 1000
// looks here.
func TestDryBucketNoCallPerLook(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	spendFleet(t, rdb, s.StateKey("p"), 15*time.Second)
	q := s.Partition("p")
	q.Learn(quota(10), 10*time.Second)
	waitFor(t, "the lease refused", func() bool { return s.Stats().Calls >= 2 })
	calls := s.Stats().Calls
	for range 1000 {
		if _, ok, _ := q.Take(time.Now()); ok {
			t.Fatal("a token while the fleet holds them all")
		}
		time.Sleep(time.Millisecond)
	}
	if n := s.Stats().Calls - calls; n > 20 {
		t.Errorf("%d Redis calls for 1000 looks for a token while the fleet's bucket is dry", n)
	}
}

// TestFlappingLimitWritesBounded proves that a server whose announced
// limit changes with every response (two backends behind one address, say)
// does not cost a Redis write per response: a quota that differs again
// less than WithLeaseTime after the member last wrote one is used, not
// written. Each response's quota was written, and told to every member by
// a message: 5626 Redis calls in a second here, the member's leases
// starved behind them.
func TestFlappingLimitWritesBounded(t *testing.T) {
	s, _, _ := scriptStore(t)
	q := s.Partition("flapping")
	start := time.Now()
	looks := 0
	for i := 0; time.Since(start) < time.Second; i++ {
		q.Learn(quota(100+100*(i%2)), time.Second)
		q.Take(time.Now())
		looks++
		time.Sleep(100 * time.Microsecond)
	}
	// 5 writes a second (WithLeaseTime 200ms), and about as many leases.
	if st := s.Stats(); st.Calls > 50 {
		t.Errorf("%d Redis calls in 1s for %d responses whose limit flaps; stats %+v", st.Calls, looks, st)
	}
}

// TestRemainingAboveLimitPacesByRemaining: a server whose every response
// says that 100 requests remain of a quota it gives as 1 a minute
// (X-RateLimit-Limit: 1, X-RateLimit-Remaining: 100). The remaining count
// says the quota counted is at least that: a Transport without a store
// paces by it, and sends 10 calls at once; so must a fleet (here of one
// member). The Store paced by the limit alone, one call in 63 s: 8 of the
// 10 calls were refused with ErrRateLimited, while the server said 100
// remained.
func TestRemainingAboveLimitPacesByRemaining(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "1")
		w.Header().Set("X-RateLimit-Remaining", "100")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	for _, store := range []bool{false, true} {
		client, s := storeClient(t, srv, store, resilient.WithMaxRetries(0), resilient.WithMaxRetryAfter(2*time.Second))
		refused := 0
		for i := range 10 {
			if err := get(client, srv.URL, waitBound); err != nil {
				if !errors.Is(err, resilient.ErrRateLimited) {
					t.Fatalf("store %v: call %d: %v", store, i+1, err)
				}
				refused++
			}
			if i == 0 && s != nil {
				waitFor(t, "the quota written", func() bool { return s.Stats().Calls >= 2 })
			}
		}
		if refused > 0 {
			t.Errorf("store %v: %d of 10 calls refused, the server saying 100 remain; want none", store, refused)
		}
	}
}

// storeClient returns a client whose Transport, over srv's, has opts and,
// when store is true, a Store of its own on the test's Redis (closed when
// the test ends), which it returns too (nil without).
func storeClient(t *testing.T, srv *httptest.Server, store bool, opts ...resilient.Option) (*http.Client, *redisquota.Store) {
	var s *redisquota.Store
	if store {
		addr := redisAddr()
		s = redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
		t.Cleanup(func() { s.Close() })
		opts = append(opts, resilient.WithQuotaStore(s))
	}
	return &http.Client{Transport: resilient.New(srv.Client().Transport, opts...)}, s
}
