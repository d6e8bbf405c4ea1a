package redisquota_test

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// tokenWithin reports whether q gives a token within d, waiting as Take
// says.
func tokenWithin(q resilient.QuotaPartition, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w, ok, retry := q.Take(time.Now())
		if ok {
			return true
		}
		timer := time.NewTimer(min(w, time.Until(deadline)))
		select {
		case <-timer.C:
		case <-retry:
		}
		timer.Stop()
	}
	return false
}

// hostileState is a partition state written to Redis by another hand than
// a member's: fields returns it, given Redis's time.
type hostileState struct {
	name   string
	fields func(now time.Time) map[string]any
}

const year = 365 * 24 * time.Hour

// checkHostileStates writes each state to a partition's key under a prefix
// of its own before a member uses it, and checks that the member, which
// learned a quota of 100 a second, is not locked out: it gets 5 tokens
// (which the quota gives in about 50ms) within 5s, and believes no pause
// further ahead than resilient.MaxBelievedReset.
func checkHostileStates(t *testing.T, states []hostileState) {
	t.Helper()
	addr := redisAddr()
	rdb := newRedis(t, addr)
	ctx := context.Background()
	for _, tt := range states {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix(t, addr)
			s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			defer s.Close()
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			const name = "https://api.example.com reads"
			if err := rdb.HSet(ctx, s.StateKey(name), tt.fields(now)).Err(); err != nil {
				t.Fatal(err)
			}
			q := s.Partition(name)
			q.Learn(quota(100), time.Second)
			for i := range 5 {
				if !tokenWithin(q, 5*time.Second) {
					t.Fatalf("token %d: none in 5s (pause until %v); stats %+v", i, q.PauseUntil(), s.Stats())
				}
			}
			if pu := q.PauseUntil(); time.Until(pu) > resilient.MaxBelievedReset {
				t.Errorf("a pause until %v believed, %v ahead", pu, time.Until(pu))
			}
		})
	}
}

// TestHostilePause proves that a pause in Redis further ahead than any
// member writes (resilient.MaxBelievedReset: the core believes no longer
// pause from a server) is not believed, by the member nor by the lease
// script: the partition is not locked out.
func TestHostilePause(t *testing.T) {
	checkHostileStates(t, []hostileState{
		{"years ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "pause": now.Add(10 * year).UnixMicro()}
		}},
		{"a day ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "pause": now.Add(23 * time.Hour).UnixMicro()}
		}},
	})
}

// TestHostileWindow proves that a window in Redis longer than any member
// writes (resilient.MaxBelievedReset: the core believes no longer window
// from a server), reported as just seen, is not believed: the partition is
// not paced by it, and the member writes its quota again.
func TestHostileWindow(t *testing.T) {
	checkHostileStates(t, []hostileState{
		{"years", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": (10 * year).Microseconds(),
				"lset": now.UnixMicro(), "lseen": now.UnixMicro()}
		}},
		{"a day", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": (24 * time.Hour).Microseconds(),
				"lset": now.UnixMicro(), "lseen": now.UnixMicro()}
		}},
	})
}

// TestHostileBucket proves that a bucket in Redis whose next token lies
// further ahead than the members take them (years) does not lock the
// partition out: the lease script brings it back within two windows of
// the quota.
func TestHostileBucket(t *testing.T) {
	checkHostileStates(t, []hostileState{
		{"years ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "tat": now.Add(10 * year).UnixMicro()}
		}},
		{"a day ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "tat": now.Add(24 * time.Hour).UnixMicro()}
		}},
	})
}

// TestHostileSeedCap proves that a seeded window's cap in Redis whose
// reset lies further ahead than any member seeds one (a response's reset
// the core believes: resilient.MaxBelievedReset) does not lock the
// partition out. The lease that spent the cap moved the bucket's next
// token to that reset, years ahead, past the bound the script keeps the
// bucket within (two windows of the quota past the horizon), and the
// member's refiller waited for it, asking no lease of Redis in the
// meantime.
func TestHostileSeedCap(t *testing.T) {
	checkHostileStates(t, []hostileState{
		{"years ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "scap": 0, "sreset": now.Add(10 * year).UnixMicro()}
		}},
		{"a day ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "scap": -5, "sreset": now.Add(24 * time.Hour).UnixMicro()}
		}},
	})
}

// TestHostileResetRecord proves that a latest reset recorded in Redis that
// no member wrote (a time that does not parse, years ahead, a number that
// is not one) fails no lease: the partition is not locked out.
func TestHostileResetRecord(t *testing.T) {
	checkHostileStates(t, []hostileState{
		{"not numbers", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "rat": "x", "rby": "y", "rseq": "z"}
		}},
		{"years ahead", func(now time.Time) map[string]any {
			return map[string]any{"limit": 100, "window": 1000000, "rat": now.Add(10 * year).UnixMicro(), "rby": "y", "rseq": "1.5"}
		}},
	})
}

// TestHostileMembers proves that members whose heartbeat or lease lies
// ahead of Redis's clock (a corrupt or hostile entry, which no member
// writes) are not counted for ever: a member silent for three heartbeats
// is no longer counted, and a member falling back when Redis goes away
// paces at its share of the quota among the members that live, not among
// a thousand that never were.
func TestHostileMembers(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	admin := newRedis(t, rs.addr())
	ctx := context.Background()
	now, err := admin.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(20*time.Millisecond))
	defer s.Close()
	const name = "members"
	var fakes []redis.Z
	for i := range 1000 {
		fakes = append(fakes, redis.Z{Score: float64(now.Add(year).UnixMicro()), Member: "fake" + strconv.Itoa(i)})
	}
	for _, key := range []string{prefix + ":members", s.StateKey(name) + ":members"} {
		if err := admin.ZAdd(ctx, key, fakes...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	q := s.Partition(name)
	q.Learn(quota(100), time.Second)
	takeToken(t, q)
	waitFor(t, "one member counted", func() bool { return s.Members() == 1 })
	rs.stop()
	for i := range 5 {
		if !tokenWithin(q, waitBound) {
			t.Fatalf("token %d: none within waitBound, Redis down; stats %+v", i, s.Stats())
		}
	}
}

// TestHostileBudget proves that a retry budget's balance in Redis that no
// member wrote (NaN, infinities, a number out of range, a string that is
// no number) does not lock the fleet's retries out: the script keeps the
// balance a number within [0, burst], and a member whose answers refill
// its view may retry again after the next sync. A balance of NaN was kept
// as NaN by every sync (each renewing its expiry) and returned as
// math.MinInt64: every member refused every retry of the host for good,
// where budgets of their own would have refilled.
func TestHostileBudget(t *testing.T) {
	for _, bal := range []string{"nan", "-nan", "inf", "-inf", "1e400", "-1e400", "9223372036854775807", "-5", "x"} {
		t.Run(bal, func(t *testing.T) {
			s, rdb, _ := scriptStore(t)
			const name = "https://api.example.com:443"
			ctx := context.Background()
			if err := rdb.HSet(ctx, s.BudgetKey(name), "bal", bal).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := redisquota.SyncBudget(s, s.BudgetKey(name), "b:a:1:1", 0, 0, 10000)
			if err != nil || got < 0 || got > 10000 {
				t.Errorf("a sync over a balance of %q: %d, %v; want a balance within [0, 10000]", bal, got, err)
			} else if stored, err := rdb.HGet(ctx, s.BudgetKey(name), "bal").Float64(); err != nil || stored != float64(got) {
				t.Errorf("the balance stored is %v, %v; want %d", stored, err, got)
			}

			// A member whose answers refill its view retries again.
			if err := rdb.HSet(ctx, s.BudgetKey(name), "bal", bal).Err(); err != nil {
				t.Fatal(err)
			}
			b := s.Budget(name, resilient.RetryBudget{Ratio: 1, Burst: 2, ThrottledCost: 0.1})
			waitFor(t, "the first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
			for b.Withdraw(1) {
			}
			b.Deposit(1)
			b.Deposit(1)
			syncs := s.Stats().BudgetSyncs
			waitFor(t, "the deposits synced", func() bool { return s.Stats().BudgetSyncs > syncs })
			if !b.Withdraw(1) {
				view, synced, _ := s.BudgetView(name)
				t.Errorf("a budget refilled by 2 answers refused a retry: view %v, synced %v", view, synced)
			}
		})
	}

	// A Store's running total that is no number is taken for one the
	// budget does not hold: the sync applies its last change.
	for _, total := range []string{"nan", "x"} {
		t.Run("total "+total, func(t *testing.T) {
			s, rdb, _ := scriptStore(t)
			key := s.BudgetKey("https://api.example.com:443")
			if err := rdb.HSet(context.Background(), key, "bal", 5000, "b:a:1:1", total).Err(); err != nil {
				t.Fatal(err)
			}
			if got, err := redisquota.SyncBudget(s, key, "b:a:1:1", -3000, -1000, 10000); err != nil || got != 4000 {
				t.Errorf("a sync over a running total of %q: %d, %v; want 4000", total, got, err)
			}
		})
	}
}

// TestHostileNotANumber proves that a partition's state in Redis holding a
// value that Lua reads as no finite number (NaN, an infinity, where a
// member writes a time, a count or a window) does not end the fleet's
// sharing of the partition: the lease script takes it for absent, and the
// member takes leases. A tat or a pause of NaN was kept by every lease
// call (NaN compares false with everything, and the script wrote the NaN
// back, renewing its expiry), whose reply did not parse: every member
// paced alone, at its share of the quota, for as long as the state lived,
// and called Redis every second per partition in use.
func TestHostileNotANumber(t *testing.T) {
	var states []hostileState
	for _, field := range []string{"tat", "pause", "limit", "window"} {
		for _, v := range []string{"nan", "-nan", "inf", "-inf"} {
			states = append(states, hostileState{field + " " + v, func(now time.Time) map[string]any {
				m := map[string]any{"limit": 100, "window": 1000000}
				m[field] = v
				return m
			}})
		}
	}
	addr := redisAddr()
	rdb := newRedis(t, addr)
	ctx := context.Background()
	for _, tt := range states {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix(t, addr)
			s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			defer s.Close()
			const name = "https://api.example.com reads"
			if err := rdb.HSet(ctx, s.StateKey(name), tt.fields(time.Now())).Err(); err != nil {
				t.Fatal(err)
			}
			q := s.Partition(name)
			q.Learn(quota(100), time.Second)
			deadline := time.Now().Add(waitBound)
			for s.Stats().Leases == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no lease within waitBound; stats %+v", s.Stats())
				}
				tokenWithin(q, 50*time.Millisecond)
			}
		})
	}
}

// TestHostileOutOfRange proves that a partition's state in Redis holding a
// finite value beyond what the lease script's reply carries (a pause
// before -2^63 µs, a limit whose tokens come less than a millionth of a µs
// apart, past 2^63, or so far below 1 that its tokens are an infinity
// apart, or a window below a µs), written while the members share the
// quota, does
// not end the fleet's sharing of the partition: the member takes leases
// again. The reply did not parse (a pause of 301 digits, an interval
// written as 0.000000, a limit Redis cannot make an integer of, a base of
// -inf): every
// member paced alone, at its share of the quota, for as long as the state
// lived, which each failed lease call renewed.
func TestHostileOutOfRange(t *testing.T) {
	addr := redisAddr()
	rdb := newRedis(t, addr)
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		field string
		v     string
		kept  bool // the value is believed, and stays in the state
	}{
		{"pause far before", "pause", "-1e300", false},
		{"pause before int64", "pause", "-1e19", false},
		{"limit past the interval's digits", "limit", "1e15", true},
		{"limit past int64", "limit", "1e300", false},
		// A limit Lua reads as 2^63 (math.MaxInt64, which a member
		// writes when a server announces it for "unlimited", rounds
		// to it): believed, a pace that holds nothing back.
		{"limit at 2^63", "limit", "9223372036854775808", true},
		{"limit below one", "limit", "1e-300", false},
		// A window shorter than any member writes (below 1µs: a member
		// writes its windows in whole µs, rounded up). One of 5e-324 made
		// the bucket's interval 0, a reply that does not parse.
		{"window far below a µs", "window", "5e-324", false},
		{"window below a µs", "window", "0.5", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix(t, addr)
			s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			defer s.Close()
			const name = "https://api.example.com reads"
			q := s.Partition(name)
			q.Learn(quota(100), time.Second)
			if !tokenWithin(q, waitBound) || s.Stats().Leases == 0 {
				t.Fatalf("no lease before the state was written; stats %+v", s.Stats())
			}
			if err := rdb.HSet(ctx, s.StateKey(name), tt.field, tt.v).Err(); err != nil {
				t.Fatal(err)
			}
			before := s.Stats().Leases
			deadline := time.Now().Add(waitBound)
			for s.Stats().Leases == before {
				if time.Now().After(deadline) {
					t.Fatalf("%s %s: no lease within waitBound; stats %+v", tt.field, tt.v, s.Stats())
				}
				tokenWithin(q, 50*time.Millisecond)
			}
			if tt.field != "limit" && tt.field != "window" {
				return
			}
			// A lease asked before the value was written may be the one
			// counted: a value not believed is deleted by a later one.
			deadline = time.Now().Add(waitBound)
			for {
				got, err := rdb.HGet(ctx, s.StateKey(name), tt.field).Result()
				if err != nil && err != redis.Nil {
					t.Fatal(err)
				}
				kept := got == tt.v
				if kept == tt.kept || tt.kept || time.Now().After(deadline) {
					if kept != tt.kept {
						t.Errorf("%s %s: after the leases of waitBound the state holds %q; want it kept %v", tt.field, tt.v, got, tt.kept)
					}
					break
				}
				tokenWithin(q, 50*time.Millisecond)
			}
		})
	}
}

// TestHostileBudgetKeyType proves that a retry budget whose key in Redis
// holds another type (a string planted under the Store's prefix), whose
// syncs all fail, is the member's alone, and that the Store's other
// budgets stay the fleet's. One such key made every sync fail as a
// whole: every budget of the member was its own, a fleet's outage costing
// one Burst of retries per member, for as long as the key was there.
func TestHostileBudgetKeyType(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const bad, good = "https://bad.example.com:443", "https://good.example.com:443"
	if err := rdb.Set(ctx, s.BudgetKey(bad), "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, s.BudgetKey(good), "bal", 5000).Err(); err != nil {
		t.Fatal(err)
	}
	settings := resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1}
	bb := s.Budget(bad, settings)
	gb := s.Budget(good, settings)
	waitFor(t, "the good budget synced", func() bool {
		_, synced, _ := s.BudgetView(good)
		return synced == 5
	})
	calls := s.Stats().Calls
	waitFor(t, "another sync", func() bool { return s.Stats().Calls > calls+1 })
	if !gb.Withdraw(1) {
		t.Fatal("the good budget refused a retry")
	}
	if n := s.Stats().BudgetLocal; n != 0 {
		t.Errorf("the good budget's retry was allowed by the member's view alone (BudgetLocal %d): its sharing ended", n)
	}
	if !bb.Withdraw(1) {
		t.Error("the budget whose key is of another type refused a retry, its view full")
	}
}

// TestHostileBudgetKeyTypeQuiet proves that a retry budget whose key in
// Redis holds another type (a string planted under the Store's prefix,
// with no expiry) costs no Redis call once the member stops using it: as
// any budget, it is synced while the member changes it, and for 2s after
// while its view is below the Burst. Each of its syncs, failing on the
// key, asked for the next one, and kept the member's change to send:
// the Store made a Redis call every WithBudgetSync for as long as the key
// lived, the host called or not. Once the key is gone, the member's next
// change shares the budget again.
func TestHostileBudgetKeyTypeQuiet(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix),
		redisquota.WithBudgetSync(10*time.Millisecond), redisquota.WithHeartbeat(time.Minute))
	defer s.Close()
	rdb := newRedis(t, addr)
	const name = "https://bad.example.com:443"
	if err := rdb.Set(context.Background(), s.BudgetKey(name), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := s.Budget(name, resilient.RetryBudget{Ratio: 0.1, Burst: 10, ThrottledCost: 0.1})
	waitFor(t, "the first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	if !b.Withdraw(1) {
		t.Fatal("the budget whose key is of another type refused a retry, its view full")
	}
	time.Sleep(redisquota.IdleExit + 500*time.Millisecond)
	calls := s.Stats().Calls
	time.Sleep(500 * time.Millisecond)
	if n := s.Stats().Calls - calls; n > 0 {
		t.Errorf("a budget unused for %v made %d Redis calls in 500ms (WithBudgetSync 10ms); want none", redisquota.IdleExit+500*time.Millisecond, n)
	}

	// The key gone, the member's next change shares the budget again:
	// the fleet's, new, starts full, less that change.
	if err := rdb.Del(context.Background(), s.BudgetKey(name)).Err(); err != nil {
		t.Fatal(err)
	}
	if !b.Withdraw(1) {
		t.Fatal("the budget refused its second retry, 9 tokens left")
	}
	var bal int64
	waitFor(t, "the change synced", func() bool {
		// The balance is in Redis once the script ran, the member's
		// budget the fleet's again once it read the reply.
		var err error
		bal, err = rdb.HGet(context.Background(), s.BudgetKey(name), "bal").Int64()
		return err == nil && !redisquota.Broken(b)
	})
	if bal != 9000 {
		t.Errorf("the fleet's balance is %d once the key was gone, want 9000: full, less the change since", bal)
	}
	if local := s.Stats().BudgetLocal; !b.Withdraw(1) || s.Stats().BudgetLocal != local {
		t.Error("once the key was gone, a retry was not the fleet's")
	}
}

// TestHostileStateKeyTypeResync proves that a partition whose state key in
// Redis holds another type (a string planted under the Store's prefix)
// does not fail the member's resync after go-redis subscribes again: the
// other partitions catch up, and the resync is not made again and again.
// Its command's WRONGTYPE failed the whole resync, which listen tried
// again with backoff for as long as the key was there (every partition's
// state read each second), the partitions read after it never catching
// up.
func TestHostileStateKeyTypeResync(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	admin := newRedis(t, rs.addr())
	ctx := context.Background()
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix))
	defer s.Close()
	if err := admin.Set(ctx, s.StateKey("bad"), "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	good := s.Partition("good")
	good.Learn(quota(100), time.Second)
	takeToken(t, good)
	s.Partition("bad").Learn(quota(100), time.Second)
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > 0 })

	// A pause the member misses: written without a message, as another
	// member's would be while this one's pub/sub connection is down; the
	// connection then drops, and the resync that follows its return
	// reads it. (Written after the drop, the pause could land after that
	// resync: the test failed so under load.)
	now, err := admin.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.HSet(ctx, s.StateKey("good"), "pause", now.Add(time.Minute).UnixMicro()).Err(); err != nil {
		t.Fatal(err)
	}
	resyncs := s.Stats().Resyncs
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a resync", func() bool { return s.Stats().Resyncs > resyncs })
	if pu := good.PauseUntil(); time.Until(pu) < 30*time.Second {
		t.Errorf("after the resync, the good partition's pause ends at %v, want about a minute ahead", pu)
	}
}

// TestHostileMembersKeyType proves that the members' heartbeats key
// holding another type (a string planted under the Store's prefix) does
// not leave every member counting itself alone: the heartbeat replaces it.
// Its WRONGTYPE failed every heartbeat, Members stayed 0, and each member
// took the whole balance of a retry budget as its allowance before a sync
// (and the whole quota when pacing locally), while its syncs and leases
// succeeded.
func TestHostileMembersKeyType(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	if err := newRedis(t, addr).Set(context.Background(), prefix+":members", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	var stores []*redisquota.Store
	for range 2 {
		s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithHeartbeat(20*time.Millisecond))
		defer s.Close()
		stores = append(stores, s)
	}
	waitFor(t, "2 members counted", func() bool { return stores[0].Members() == 2 && stores[1].Members() == 2 })
}

// TestHostilePartitionKeyType proves that a key of a partition's that
// holds another type (a string planted under the Store's prefix, without
// an expiry: the state, its active members or its give-back fields) does
// not keep the partition from sharing for good: the scripts replace it, as
// the heartbeat replaces the members' key, and the member's pause, quota
// and leases reach Redis. Each script's WRONGTYPE failed the call: the
// pause and the quota were never written and no lease was granted (the
// give-back fields: none with tokens to give back), and the member paced
// locally for as long as the key was there.
func TestHostilePartitionKeyType(t *testing.T) {
	for _, suffix := range []string{"", ":members", ":gb"} {
		t.Run("state"+suffix, func(t *testing.T) {
			addr := redisAddr()
			prefix := testPrefix(t, addr)
			admin := newRedis(t, addr)
			s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			defer s.Close()
			const name = "https://api.example.com reads"
			if err := admin.Set(context.Background(), s.StateKey(name)+suffix, "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
			q := s.Partition(name)
			q.Pause(time.Now().Add(100 * time.Millisecond))
			q.Learn(quota(2000), time.Second)
			for range 200 {
				takeToken(t, q)
				redisquota.GiveBack(q, 1)
			}
			if st := s.Stats(); st.Errors != 0 || st.PausesSent != 1 || st.Leases == 0 {
				t.Errorf("%d Redis calls failed, %d pauses written, %d leases; want none failed, the pause written and leases", st.Errors, st.PausesSent, st.Leases)
			}
			if l, err := admin.HGet(context.Background(), s.StateKey(name), "limit").Int(); err != nil || l != 2000 {
				t.Errorf("Redis holds the quota %d (%v), want 2000", l, err)
			}
		})
	}
}

// TestUnlimitedAnnouncedQuotaGrants proves that a quota announced as
// math.MaxInt requests a second (math.MaxInt64 where int has 64 bits: how
// some servers say "unlimited"), which the Lua script reads as 2^63, still
// grants the fleet's tokens: a lease script that deleted a limit of 2^63
// deleted the quota the member wrote back at once, and the member granted
// nothing, calling Redis in a loop.
func TestUnlimitedAnnouncedQuotaGrants(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	defer s.Close()
	q := s.Partition("https://api.example.com reads")
	q.Learn(quota(math.MaxInt), time.Second)
	for i := range 50 {
		if !tokenWithin(q, waitBound) {
			t.Fatalf("token %d: none within waitBound; stats %+v", i, s.Stats())
		}
	}
}

// replyGarbler is a go-redis hook that replaces the reply of every script
// (EVALSHA or EVAL, alone or in a pipeline) with one no script of the Store
// gives, as a proxy or a server that speaks Redis's protocol otherwise
// might: the script runs in Redis, and the Store gets a reply it cannot
// read. It counts the calls (a command, or a pipeline) it garbled.
type replyGarbler struct{ calls atomic.Int64 }

func (h *replyGarbler) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *replyGarbler) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if garble(cmd) {
			h.calls.Add(1)
		}
		return err
	}
}

func (h *replyGarbler) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		garbled := false
		for _, cmd := range cmds {
			garbled = garble(cmd) || garbled
		}
		if garbled {
			h.calls.Add(1)
		}
		return err
	}
}

// garble replaces the reply of cmd, when it is a script that succeeded,
// with two strings, and reports whether it did.
func garble(cmd redis.Cmder) bool {
	c, ok := cmd.(*redis.Cmd)
	if !ok || c.Err() != nil {
		return false
	}
	if name, _ := c.Args()[0].(string); !strings.EqualFold(name, "evalsha") && !strings.EqualFold(name, "eval") {
		return false
	}
	c.SetVal([]any{"garbled", "reply"})
	return true
}

// TestGarbledRepliesAreErrors proves that a Store counts every call whose
// script's reply it cannot read in Stats().Errors, as it counts the calls
// that failed (the lease, learn, pause, resync and budget calls returned an
// error for it that was not counted: a member whose every lease went wrong
// showed almost none), and never fails a call for it: it paces locally, at
// the quota the Transport learned, and the server sends no 429 but the one
// scripted, whose pause the member keeps. Every reply the hook garbles
// here is one the Store reads (no tokens are given back, no host reset).
func TestGarbledRepliesAreErrors(t *testing.T) {
	addr := redisAddr()
	g := &replyGarbler{}
	s := redisquota.New(newRedis(t, addr, g), redisquota.WithPrefix(testPrefix(t, addr)))
	defer s.Close()
	srv := resilienttest.NewServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 100, TimeScale: 60, ResetFormat: resilienttest.IETF}),
		resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.Normal(), resilienttest.RateLimited(time.Second)))
	defer srv.Close()
	client := &http.Client{Transport: resilient.New(srv.Transport(), resilient.WithQuotaStore(s))}
	for range 40 {
		getOK(t, client, srv.URL+"/v1/usage")
	}
	waitFor(t, "a lease asked for", func() bool { return g.calls.Load() >= 2 })
	s.Close() // the Store's goroutines are done: no call starts after it
	waitFor(t, "every garbled reply counted in Stats().Errors", func() bool { return s.Stats().Errors >= g.calls.Load() })
	st := s.Stats()
	if st.Fallbacks == 0 || st.Leases != 0 {
		t.Errorf("stats %+v: want fallbacks, no lease", st)
	}
	if n := srv.Stats().RateLimited; n > 1 {
		t.Errorf("the server sent %d 429s to a member pacing locally", n)
	}
}

// TestHostileWindowSeenAhead proves that a window whose state says it was
// last reported ahead of Redis's clock (lseen, or lset without it, which
// no member writes: a corrupt or hostile hand, or a Redis failed over to
// a replica whose clock is behind) goes stale as one reported now would:
// two of its windows after the first report that finds it, a shorter
// window seen with most of the quota left replaces it. Read as reported
// in ten years, it was never stale: the fleet paced by 60 an hour, where
// the server's window is a minute, for as long as the state lived.
func TestHostileWindowSeenAhead(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	for _, field := range []string{"lseen", "lset"} {
		t.Run(field, func(t *testing.T) {
			name := "https://ahead.example.com " + field
			key := s.StateKey(name)
			if _, _, err := redisquota.RunLearn(s, name, 60, time.Hour, -1, false); err != nil {
				t.Fatal(err)
			}
			ahead := us(redisNow(t, rdb) + (10 * 365 * 24 * time.Hour).Microseconds())
			if field == "lset" {
				if err := rdb.HDel(ctx, key, "lseen").Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rdb.HSet(ctx, key, field, ahead).Err(); err != nil {
				t.Fatal(err)
			}
			// Not stale when first found: it counts from now.
			if changed, _, err := redisquota.RunLearn(s, name, 60, time.Minute, 59, true); err != nil || changed {
				t.Fatalf("a minute replaced the hour as soon as its report was found ahead (changed %v, err %v)", changed, err)
			}
			st := readWindow(t, rdb, key)
			back := []any{"lset", us(st.lset - (3 * time.Hour).Microseconds())}
			if st.lseen != 0 {
				back = append(back, "lseen", us(st.lseen-(3*time.Hour).Microseconds()))
			}
			if err := rdb.HSet(ctx, key, back...).Err(); err != nil {
				t.Fatal(err)
			}
			changed, _, err := redisquota.RunLearn(s, name, 60, time.Minute, 59, true)
			if err != nil {
				t.Fatal(err)
			}
			if st := readWindow(t, rdb, key); !changed || st.window != time.Minute.Microseconds() {
				t.Errorf("three hours after the hour was last reported, a minute did not replace it: %+v", st)
			}
		})
	}
}
