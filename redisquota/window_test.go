package redisquota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// windowState is what Redis holds of a partition's window: window, lset
// and lseen (µs; 0 when absent), and lby.
type windowState struct {
	limit, window, lset, lseen int64
	lby                        string
}

func readWindow(t *testing.T, rdb *redis.Client, key string) windowState {
	t.Helper()
	v, err := rdb.HMGet(context.Background(), key, "limit", "window", "lset", "lseen", "lby").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := func(i int) int64 {
		s, _ := v[i].(string)
		x, _ := strconv.ParseInt(s, 10, 64)
		return x
	}
	lby, _ := v[4].(string)
	return windowState{limit: n(0), window: n(1), lset: n(2), lseen: n(3), lby: lby}
}

// redisNow returns Redis's clock, in µs.
func redisNow(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	tm, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMicro()
}

// us formats µs for HSET.
func us(v int64) string { return strconv.FormatInt(v, 10) }

// elapse makes d pass in the window Redis holds at key (its lset and lseen
// moved back) and in the times of the members qs to their next report.
func elapse(t *testing.T, rdb *redis.Client, key string, d time.Duration, qs ...resilient.QuotaPartition) {
	t.Helper()
	st := readWindow(t, rdb, key)
	if err := rdb.HSet(context.Background(), key, "lset", us(st.lset-d.Microseconds()),
		"lseen", us(st.lseen-d.Microseconds())).Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		redisquota.Elapse(q, d)
	}
}

// announced is what a response announced of a quota of 60: left remaining, the
// reset in reset.
func announced(left int, reset time.Duration) resilient.RateLimitInfo {
	return resilient.RateLimitInfo{Limit: 60, Remaining: left, Reset: time.Now().Add(reset)}
}

// TestStaleWindowReplaced: member A believes a reset 59 minutes ahead once,
// from a host whose quota (60 a minute) announces no window, and writes a
// window of 59 minutes; afterwards the members see windows of a minute,
// and 59 of the 60 left (the quota barely used).
// While the 59 minutes are not stale (A wrote them, then an hour passed:
// less than two of its windows), B's minute does not replace them: one
// call, refused. Once two hours have passed with no member reporting a
// window close to 59 minutes (half of it), B's next report replaces it,
// and both members pace by a minute. (Redis kept the longest window for
// good: the fleet paced 60 calls an hour until the state expired, a day
// after its last use.) The hours pass in Redis's state (lset and lseen
// moved back) and in the members' times to their next report.
func TestStaleWindowReplaced(t *testing.T) {
	f := twoMembers(t)
	a, b, rtA, rtB, addr := f.a, f.b, f.rtA, f.rtB, f.addr
	rdb := newRedis(t, addr)
	const name = "https://api.example.com reads"
	key := a.StateKey(name)
	qa, qb := a.Partition(name), b.Partition(name)
	knows := func(q resilient.QuotaPartition, w time.Duration) func() bool {
		return func() bool { l, kw := redisquota.Known(q); return l == 60 && kw == w }
	}
	qa.Learn(announced(59, 59*time.Minute), 59*time.Minute)
	waitFor(t, "B knows A's 59 minutes", knows(qb, 59*time.Minute))

	// An hour later (lseen an hour back), the members see a minute.
	elapse(t, rdb, key, time.Hour, qa, qb)
	qb.Learn(announced(59, time.Minute), time.Minute)
	waitFor(t, "B reports its minute", func() bool { return rtB.scriptRan(redisquota.LearnHash) == 1 })
	time.Sleep(50 * time.Millisecond) // a "q" message would be here by now
	if st := readWindow(t, rdb, key); st.window != (59 * time.Minute).Microseconds() {
		t.Fatalf("an hour after A wrote 59 minutes, B's minute replaced them: %+v", st)
	}
	if _, w := redisquota.Known(qb); w != 59*time.Minute {
		t.Fatalf("B paces by %v, not by the fleet's 59 minutes", w)
	}
	for range 10 {
		qb.Learn(announced(59, time.Minute), time.Minute) // reported already
	}

	// Another hour: two hours since anybody reported 59 minutes.
	elapse(t, rdb, key, time.Hour, qa, qb)
	before := readWindow(t, rdb, key)
	for range 10 {
		qb.Learn(announced(59, time.Minute), time.Minute)
		qa.Learn(announced(59, time.Minute), time.Minute)
	}
	waitFor(t, "both members pace by a minute", func() bool {
		return knows(qa, time.Minute)() && knows(qb, time.Minute)()
	})
	st := readWindow(t, rdb, key)
	if st.limit != 60 || st.window != time.Minute.Microseconds() || st.lseen < st.lset {
		t.Errorf("state %+v, want a minute's window, written", st)
	}
	if st.lset-before.lseen <= 2*(59*time.Minute).Microseconds() {
		t.Errorf("59 minutes replaced %v after they were last reported, within two of their windows",
			time.Duration(st.lset-before.lseen)*time.Microsecond)
	}
	// One report per member per window: B's two, and one of A's, or
	// none (B's replacement reached it first).
	if n := rtB.script(redisquota.LearnHash); n != 2 {
		t.Errorf("B reported the window %d times, want 2", n)
	}
	if n := rtA.script(redisquota.LearnHash); n > 2 {
		t.Errorf("A wrote or reported the window %d times, want at most 2", n)
	}
}

// TestRollingWindowKeptInUse: a rolling window's resets are those of its
// oldest request, close at hand under a steady load, so that a member that
// starts while the quota is in use estimates a window of about the time to
// the next free slot, and never sees the fleet's. A writes a minute (the
// first response of a fresh rolling minute: 59 left, the reset a minute
// ahead), then stops; B, started since, sees 3 left and a reset a second
// ahead. Three minutes on, the minute stale (nobody reported it for two of
// its windows), B's report does not replace it while the quota is in use,
// and B paces by it still; B reports again a window later, and once its
// responses say that half of the quota is left, its second replaces the
// minute, as the Transport drops its own estimate then (see
// resilient.TestRateLimitRollingWindowEstimateHolds). (B's second replaced
// the minute at once: the fleet paced 60 a second against a quota of 60 a
// minute.)
func TestRollingWindowKeptInUse(t *testing.T) {
	f := twoMembers(t)
	rdb := newRedis(t, f.addr)
	const name = "rolling in use"
	key := f.a.StateKey(name)
	qa, qb := f.a.Partition(name), f.b.Partition(name)
	knows := func(w time.Duration) func() bool {
		return func() bool { l, kw := redisquota.Known(qb); return l == 60 && kw == w }
	}
	qa.Learn(announced(59, time.Minute), time.Minute)
	waitFor(t, "B knows A's minute", knows(time.Minute))
	written := readWindow(t, rdb, key)

	inUse := announced(3, time.Second)
	qb.Learn(inUse, time.Second)
	waitFor(t, "B reports its second", func() bool { return f.rtB.scriptRan(redisquota.LearnHash) == 1 })
	elapse(t, rdb, key, 3*time.Minute, qb)
	for range 10 {
		qb.Learn(inUse, time.Second)
	}
	waitFor(t, "B reports its second, the minute stale", func() bool { return f.rtB.scriptRan(redisquota.LearnHash) == 2 })
	time.Sleep(50 * time.Millisecond) // a "q" message would be here by now
	if st := readWindow(t, rdb, key); st.window != time.Minute.Microseconds() || st.lset != written.lset-(3*time.Minute).Microseconds() {
		t.Fatalf("B's second, with 3 of 60 left, replaced the stale minute: %+v", st)
	}
	if !knows(time.Minute)() {
		l, w := redisquota.Known(qb)
		t.Fatalf("B paces by %d per %v, not by the fleet's minute", l, w)
	}
	for range 10 {
		qb.Learn(inUse, time.Second) // reported already: not before a window
	}
	if n := f.rtB.script(redisquota.LearnHash); n != 2 {
		t.Errorf("B reported the window %d times in a window, want 2", n)
	}

	// A window later, the quota barely used.
	elapse(t, rdb, key, time.Minute, qb)
	for range 10 {
		qb.Learn(announced(30, time.Second), time.Second)
	}
	waitFor(t, "B paces by its second", knows(time.Second))
	if st := readWindow(t, rdb, key); st.window != time.Second.Microseconds() || st.lby != f.b.Instance() {
		t.Errorf("state %+v, want B's second, written by B", st)
	}
	if n := f.rtB.script(redisquota.LearnHash); n != 3 {
		t.Errorf("B reported the window %d times, want 3", n)
	}
}

// TestStaleWindowReplacedInTime is TestStaleWindowReplaced on Redis's own
// clock: A writes a window of a second (limit 60), then both members see
// windows of 100ms, and report them every 10ms. Nobody reconfirms the
// second, which Redis replaces by 100ms more than two seconds after A wrote
// it (by Redis's clock), and both members then pace by 100ms. Neither
// member calls Redis more than twice a second for it.
func TestStaleWindowReplacedInTime(t *testing.T) {
	f := twoMembers(t)
	a, b, rtA, rtB, addr := f.a, f.b, f.rtA, f.rtB, f.addr
	rdb := newRedis(t, addr)
	const name = "stale in time"
	const held, seen = time.Second, 100 * time.Millisecond
	key := a.StateKey(name)
	qa, qb := a.Partition(name), b.Partition(name)
	qa.Learn(quota(60), held)
	waitFor(t, "B knows A's second", func() bool { l, w := redisquota.Known(qb); return l == 60 && w == held })
	written := readWindow(t, rdb, key)
	start := time.Now()
	deadline := start.Add(15 * held)
	var last windowState // the state before the window changed
	for {
		st := readWindow(t, rdb, key)
		if st.window != held.Microseconds() {
			if st.window != seen.Microseconds() {
				t.Fatalf("state %+v, want a window of %v", st, seen)
			}
			if st.lset-last.lseen <= 2*held.Microseconds() || last.lseen != written.lseen {
				t.Errorf("the window replaced %v after it was last reported (%+v, written %+v), want more than two of its windows",
					time.Duration(st.lset-last.lseen)*time.Microsecond, last, written)
			}
			break
		}
		last = st
		if time.Now().After(deadline) {
			t.Fatalf("%v after A wrote %v, and nobody reported it since, Redis holds it still: %+v", time.Since(start), held, st)
		}
		qa.Learn(quota(60), seen)
		qb.Learn(quota(60), seen)
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	waitFor(t, "both members pace by 100ms", func() bool {
		la, wa := redisquota.Known(qa)
		lb, wb := redisquota.Known(qb)
		return la == 60 && lb == 60 && wa == seen && wb == seen
	})
	most := 2*int(elapsed/held) + 2
	if na, nb := rtA.script(redisquota.LearnHash), rtB.script(redisquota.LearnHash); na > most || nb > most {
		t.Errorf("in %v, A called the learn script %d times and B %d, want at most %d", elapsed, na, nb, most)
	}
}

// TestReconfirmedWindowKept: a member that has just started has seen only
// part of the window, and its estimate is short; it never replaces the
// fleet's window while another member keeps seeing it. A writes a window
// of 2s (limit 60) and keeps reporting windows of 1.4s (at least half of
// it: it still sees it), B reports windows of 400ms, and so does C, which
// starts after A wrote (its first report may come before it knows the
// fleet's quota); after three of its windows (by Redis's clock), Redis
// holds 2s still, and B and C pace by it. A reconfirms it about once per
// window (at most once, and a call more), and B's reports are at most two
// per window.
func TestReconfirmedWindowKept(t *testing.T) {
	f := twoMembers(t)
	a, b, rtA, rtB, addr, prefix := f.a, f.b, f.rtA, f.rtB, f.addr, f.prefix
	rdb := newRedis(t, addr)
	const name = "reconfirmed"
	// A reconfirms once per held window, and the window goes stale after
	// two: a window of 2s leaves A a margin of 2s, for a busy machine.
	const held = 2 * time.Second
	key := a.StateKey(name)
	qa, qb := a.Partition(name), b.Partition(name)
	qa.Learn(quota(60), held)
	waitFor(t, "B knows A's second", func() bool { l, w := redisquota.Known(qb); return l == 60 && w == held })
	written := readWindow(t, rdb, key)
	c := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer c.Close()
	qc := c.Partition(name)
	start := time.Now()
	var st windowState
	for redisNow(t, rdb)-written.lset <= 3*held.Microseconds() {
		qa.Learn(quota(60), held*7/10)
		qb.Learn(quota(60), held/5)
		qc.Learn(quota(60), held/5)
		time.Sleep(10 * time.Millisecond)
		st = readWindow(t, rdb, key)
		if st.window != held.Microseconds() || st.lset != written.lset {
			t.Fatalf("%v after A wrote %v, which it kept reporting, B's reports replaced it: %+v (written %+v)",
				time.Since(start), held, st, written)
		}
	}
	elapsed := time.Since(start)
	if st.lseen-written.lset < held.Microseconds() {
		t.Errorf("A did not reconfirm the window: %+v", st)
	}
	if l, w := redisquota.Known(qb); l != 60 || w != held {
		t.Errorf("B paces by %d per %v, not by the fleet's window", l, w)
	}
	waitFor(t, "C paces by the fleet's window", func() bool { l, w := redisquota.Known(qc); return l == 60 && w == held })
	na, nb := rtA.script(redisquota.LearnHash), rtB.script(redisquota.LearnHash)
	t.Logf("in %v: A called the learn script %d times, B %d", elapsed, na, nb)
	if most := int(elapsed/held) + 2; na > most {
		t.Errorf("A called the learn script %d times in %v, want at most %d", na, elapsed, most)
	}
	if most := 2*int(elapsed/held) + 2; nb > most {
		t.Errorf("B called the learn script %d times in %v, want at most %d", nb, elapsed, most)
	}
}

// TestLearnScript checks the script that writes a learned quota, held: 60
// per 10s, written 30s ago and last reported (lseen) as each case says, the
// bucket 10s ahead. A longer window, or another limit, is written; a window
// of at least half of the held one reconfirms it (lseen); a shorter one
// replaces it only when it was last reported more than two of its windows
// ago (lset when lseen is absent) and at least half of the quota is left
// (or what is left is unknown), the bucket then as many tokens ahead at
// the new pace; a report (confirm) writes no limit that is not held.
func TestLearnScript(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const held = 10 * time.Second
	for _, tc := range []struct {
		name     string
		none     bool          // no state held
		lseen    time.Duration // how long ago; 0 for absent
		limit    int64
		window   time.Duration
		confirm  bool
		left     int // what the response said remains of the 60; 0 for unknown
		changed  bool
		next     time.Duration // 0: not checked
		reconfrm bool          // lseen set to now
	}{
		{name: "longer", lseen: 5 * time.Second, limit: 60, window: 12 * time.Second, changed: true, next: 12 * time.Second},
		{name: "longer reported", lseen: 5 * time.Second, limit: 60, window: 12 * time.Second, confirm: true, changed: true},
		{name: "the same", lseen: 5 * time.Second, limit: 60, window: held, confirm: true, next: held, reconfrm: true},
		{name: "half", lseen: 19 * time.Second, limit: 60, window: held / 2, confirm: true, next: held, reconfrm: true},
		{name: "half written", lseen: 19 * time.Second, limit: 60, window: held / 2, next: held, reconfrm: true},
		{name: "shorter, fresh", lseen: 5 * time.Second, limit: 60, window: 4 * time.Second, confirm: true, next: held},
		{name: "shorter, nearly stale", lseen: 15 * time.Second, limit: 60, window: 4 * time.Second, confirm: true, next: 5*time.Second + time.Millisecond},
		{name: "shorter written, nearly stale", lseen: 15 * time.Second, limit: 60, window: 4 * time.Second, next: 5*time.Second + time.Millisecond},
		{name: "shorter, stale", lseen: 21 * time.Second, limit: 60, window: 4 * time.Second, confirm: true, changed: true, next: 4 * time.Second},
		{name: "shorter written, stale", lseen: 21 * time.Second, limit: 60, window: 4 * time.Second, changed: true},
		{name: "shorter, stale by lset", limit: 60, window: 4 * time.Second, confirm: true, changed: true},
		{name: "shorter, stale, half left", lseen: 21 * time.Second, limit: 60, window: 4 * time.Second, confirm: true, left: 30, changed: true, next: 4 * time.Second},
		{name: "shorter, stale, in use", lseen: 21 * time.Second, limit: 60, window: 4 * time.Second, confirm: true, left: 29, next: held},
		{name: "shorter written, stale, in use", lseen: 21 * time.Second, limit: 60, window: 4 * time.Second, left: 1, next: held},
		{name: "shorter, stale by lset, in use", limit: 60, window: 4 * time.Second, confirm: true, left: 10, next: held},
		{name: "another limit, in use", lseen: 21 * time.Second, limit: 100, window: time.Second, left: 1, changed: true},
		{name: "another limit", lseen: 5 * time.Second, limit: 100, window: time.Second, changed: true},
		{name: "another limit reported", lseen: 5 * time.Second, limit: 100, window: time.Second, confirm: true},
		{name: "none reported", none: true, limit: 60, window: held, confirm: true},
		{name: "none", none: true, limit: 60, window: held, changed: true},
	} {
		name := "learn " + tc.name
		key := s.StateKey(name)
		now := redisNow(t, rdb)
		if !tc.none {
			args := []any{"limit", 60, "window", held.Microseconds(), "lset", us(now - (30 * time.Second).Microseconds()),
				"lby", "other", "tat", us(now + held.Microseconds())}
			if tc.lseen > 0 {
				args = append(args, "lseen", us(now-tc.lseen.Microseconds()))
			}
			rdb.HSet(ctx, key, args...)
		}
		before := readWindow(t, rdb, key)
		remaining := -1
		if tc.left > 0 {
			remaining = tc.left
		}
		changed, next, err := redisquota.RunLearn(s, name, tc.limit, tc.window, remaining, tc.confirm)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		after := readWindow(t, rdb, key)
		end := redisNow(t, rdb)
		if changed != tc.changed {
			t.Errorf("%s: changed %v, want %v", tc.name, changed, tc.changed)
		}
		if tc.next > 0 && (next < tc.next-50*time.Millisecond || next > tc.next) {
			t.Errorf("%s: next report in %v, want %v", tc.name, next, tc.next)
		}
		switch {
		case tc.changed:
			if after.limit != tc.limit || after.window != tc.window.Microseconds() || after.lset < now || after.lset > end ||
				after.lseen != after.lset || after.lby != s.Instance() {
				t.Errorf("%s: state %+v, want %d per %v written by the Store", tc.name, after, tc.limit, tc.window)
			}
		case tc.reconfrm:
			if after.limit != 60 || after.window != held.Microseconds() || after.lset != before.lset ||
				after.lseen < now || after.lseen > end {
				t.Errorf("%s: state %+v, want the held window reconfirmed (before %+v)", tc.name, after, before)
			}
		default:
			if after != before {
				t.Errorf("%s: state %+v, want it unchanged: %+v", tc.name, after, before)
			}
		}
		if tc.changed && !tc.none && tc.limit == 60 && tc.window < held {
			tat, _ := rdb.HGet(ctx, key, "tat").Float64()
			want := float64(now) + float64(held.Microseconds())*float64(tc.window)/float64(held)
			if tat < want-float64(end-now) || tat > want+float64(end-now) {
				t.Errorf("%s: the bucket %.0fµs ahead, want %v at the new pace", tc.name, tat-float64(now), tc.window)
			}
		}
	}
}
