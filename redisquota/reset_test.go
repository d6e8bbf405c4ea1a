package redisquota_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// fleetPartition is the partition of the paused fleet's calls.
const fleetPartition = "http://altyaa.test reads"

// pausedFleet is two members of a fleet, A and B, each with a Store of its
// own on one Redis prefix, in front of one server (its usage route at
// url), once A received the server's 429 with a Retry-After of the pause,
// at paused, and B learned the pause through Redis. Both Transports make
// no retries.
type pausedFleet struct {
	api    *resilienttest.Server
	url    string
	sa, sb *redisquota.Store
	a, b   *resilient.Transport
	paused time.Time
}

// newPausedFleet returns a pausedFleet whose pause is pause; B's Store is
// given to its Transport through wrapB when not nil.
func newPausedFleet(t *testing.T, pause time.Duration, wrapB func(*redisquota.Store) resilient.QuotaStore) *pausedFleet {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	f := &pausedFleet{api: resilienttest.NewPipeServer(resilienttest.Altyaa,
		resilienttest.WithQuota(resilienttest.Quota{Limit: 1000, ResetFormat: resilienttest.IETF}),
		resilienttest.WithScript(resilienttest.RouteUsage,
			resilienttest.Normal(), resilienttest.Normal(), resilienttest.RateLimited(pause)))}
	t.Cleanup(f.api.Close)
	f.url = f.api.URL + "/v1/usage"
	f.sa = redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { f.sa.Close() })
	f.sb = redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { f.sb.Close() })
	var storeB resilient.QuotaStore = f.sb
	if wrapB != nil {
		storeB = wrapB(f.sb)
	}
	f.a = resilient.New(f.api.Transport(), resilient.WithQuotaStore(f.sa), resilient.WithMaxRetries(0))
	f.b = resilient.New(f.api.Transport(), resilient.WithQuotaStore(storeB), resilient.WithMaxRetries(0))
	for _, tr := range []http.RoundTripper{f.a, f.b} {
		if code, err := send(tr, f.url); code != 200 {
			t.Fatalf("first calls: %d, %v", code, err)
		}
	}
	if code, err := send(f.a, f.url); code != http.StatusTooManyRequests {
		t.Fatalf("A's third call: %d, %v; want the script's 429", code, err)
	}
	f.paused = time.Now()
	waitFor(t, "B sees the pause", func() bool {
		return f.sb.Partition(fleetPartition).PauseUntil().After(time.Now().Add(pause / 2))
	})
	return f
}

// send sends one GET through tr and returns its status, or the error.
func send(tr http.RoundTripper, url string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestResetHostClearsFleetPause proves that Transport.ResetHost clears the
// fleet's pause: member A gets a 429 with a Retry-After of 10 minutes, which
// pauses member B through Redis; both refuse their calls at once (no server
// hit), the wait being longer than WithMaxRetryAfter. A.ResetHost: A's next
// call reaches the server at once, and B's calls reach it again as soon as
// the reset reaches B (through pub/sub), long before the pause would end.
func TestResetHostClearsFleetPause(t *testing.T) {
	f := newPausedFleet(t, 10*time.Minute, nil)
	api, url, sa, sb, a, b := f.api, f.url, f.sa, f.sb, f.a, f.b
	const name = fleetPartition
	hits := api.Stats().Requests
	for m, tr := range map[string]http.RoundTripper{"A": a, "B": b} {
		if _, err := send(tr, url); !errors.Is(err, resilient.ErrRateLimited) {
			t.Fatalf("%s during the pause: %v, want ErrRateLimited", m, err)
		}
	}
	if n := api.Stats().Requests; n != hits {
		t.Fatalf("the server saw %d requests during the pause", n-hits)
	}

	a.ResetHost("altyaa.test")
	if code, err := send(a, url); code != 200 {
		t.Fatalf("A after its ResetHost: %d, %v; want 200 at once", code, err)
	}
	if n := api.Stats().Requests; n != hits+1 {
		t.Fatalf("A's call after its ResetHost: the server saw %d requests, want 1", n-hits)
	}
	var refused int
	waitFor(t, "B sends again", func() bool {
		code, err := send(b, url)
		if errors.Is(err, resilient.ErrRateLimited) {
			refused++
			return false
		}
		if code != 200 {
			t.Fatalf("B after A's ResetHost: %d, %v", code, err)
		}
		return true
	})
	t.Logf("B refused %d calls before the reset reached it", refused)
	if st := api.Stats(); st.Requests != hits+2 || st.RateLimited != 1 {
		t.Errorf("server: %d requests since the pause, %d 429s; want 2 and 1", st.Requests-hits, st.RateLimited)
	}
	if !sa.Partition(name).PauseUntil().IsZero() || !sb.Partition(name).PauseUntil().IsZero() {
		t.Errorf("pauses after the reset: A %v, B %v; want none", sa.Partition(name).PauseUntil(), sb.Partition(name).PauseUntil())
	}
}

// spyQuota is a QuotaStore whose partitions tell, on waiting, when a
// Transport asks for PauseChanged while the partition is paused: the
// Transport then waits for the pause.
type spyQuota struct {
	*redisquota.Store
	waiting chan struct{} // closed at the first such ask
	once    sync.Once
}

func (q *spyQuota) Partition(name string) resilient.QuotaPartition {
	return spyPart{q.Store.Partition(name), q}
}

type spyPart struct {
	resilient.QuotaPartition
	q *spyQuota
}

func (p spyPart) PauseChanged() <-chan struct{} {
	ch := p.QuotaPartition.(resilient.QuotaWatcher).PauseChanged()
	if p.PauseUntil().After(time.Now()) {
		p.q.once.Do(func() { close(p.q.waiting) })
	}
	return ch
}

// TestResetHostWakesWaitingMember proves that another member's request
// already waiting for the fleet's pause goes as soon as the reset reaches
// its member: A gets a 429 with a Retry-After of 50s, which B learns
// through Redis; B's call waits for the pause (shorter than
// WithMaxRetryAfter); A.ResetHost; B's call reaches the server long before
// the pause would have ended.
func TestResetHostWakesWaitingMember(t *testing.T) {
	const pause = 50 * time.Second
	spy := &spyQuota{waiting: make(chan struct{})}
	f := newPausedFleet(t, pause, func(s *redisquota.Store) resilient.QuotaStore {
		spy.Store = s
		return spy
	})
	api, url, a, b := f.api, f.url, f.a, f.b
	end := f.paused.Add(pause) // the pause ends after this
	hits := api.Stats().Requests
	done := make(chan error, 1)
	go func() {
		code, err := send(b, url)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		done <- err
	}()
	<-spy.waiting
	a.ResetHost("altyaa.test")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("B's waiting call: %v", err)
		}
	case <-time.After(time.Until(end)):
		t.Fatalf("B's waiting call waited the pause out")
	}
	if st := api.Stats(); st.Requests != hits+1 || st.RateLimited != 1 {
		t.Errorf("server: %d requests since the pause, %d 429s; want 1 and 1", st.Requests-hits, st.RateLimited)
	}
}

// TestGivebackOnce proves that tokens given back are credited to the
// bucket once, when the call that gave them back ran in Redis but its reply
// was lost: the member sends them again with its next call, and the script
// recognizes them. The bucket is seeded far ahead (nothing remains of a
// quota of 10 per 1000s until its reset, 1000s away), so that no lease is
// granted and no credit is hidden by the bucket's floor (now).
func TestGivebackOnce(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := replyDropper{cmd: func(a []any) bool {
		name, _ := a[0].(string)
		return strings.EqualFold(name, "evalsha") && a[1] == redisquota.LeaseHash && fmt.Sprint(a[6]) != "0"
	}}
	s := redisquota.New(newRedis(t, addr, &h), redisquota.WithPrefix(prefix))
	defer s.Close()
	const name = "giveback"
	q := s.Partition(name)
	const limit, window = 10, 1000 * time.Second
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: 0, Reset: time.Now().Add(window)}, window)
	rdb := newRedis(t, addr)
	key := s.StateKey(name)
	tat := func() float64 {
		v, err := rdb.HGet(context.Background(), key, "tat").Result()
		if err != nil {
			return 0
		}
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	waitFor(t, "the bucket seeded", func() bool { return tat() > 0 })
	before := tat()
	const n = 5
	redisquota.GiveBack(q, n)
	waitFor(t, "the tokens given back again after the lost reply", func() bool {
		dropped, delivered := h.counts()
		return dropped && delivered > 0
	})
	interval := float64(window.Microseconds()) / (limit * 0.95)
	credited := (before - tat()) / interval
	if math.Abs(credited-n) > 0.01 {
		t.Errorf("the bucket was credited %.3f tokens for %d given back once", credited, n)
	}
	if st := s.Stats(); st.Returned != n {
		t.Errorf("Stats().Returned = %d, want %d", st.Returned, n)
	}
}

// TestGivebackScript checks the lease script's give-back: a Store's net
// give-back is credited once, however many times it is sent; a field the
// state does not hold credits what it sends last, and a partition made
// again (g:a:1:2 after g:a:1:1) starts a total of its own; a negative
// give-back charges the bucket, never more than limit tokens in one call,
// whatever is sent.
func TestGivebackScript(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const name = "giveback script"
	key := s.StateKey(name)
	const limit, window = 10, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Each step starts from a bucket 8 tokens ahead: no credit (5 at most)
	// is hidden by its floor (now), nor a charge (limit at most) by its
	// ceiling (two windows ahead, 2·limit tokens: see leaseScript).
	start := float64(now.UnixMicro()) + 8*interval
	rdb.HSet(ctx, key, "limit", limit, "window", window.Microseconds())
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	for i, step := range []struct {
		field       string
		cum, delta  int64
		wantCredits float64
	}{
		{"g:a:1:1", 5, 5, 5},                    // a field the state does not hold: what it sends
		{"g:a:1:1", 5, 5, 0},                    // the same call again (its reply was lost): once
		{"g:a:1:1", 8, 3, 3},                    // 3 more
		{"g:a:1:1", 10, 5, 2},                   // the last reply was lost: 3 sent again, with 2 more
		{"g:b:1:1", 100, 4, 4},                  // another Store
		{"g:a:1:1", 9, -1, -1},                  // a charge
		{"g:a:1:1", 9, -1, 0},                   // sent again: once
		{"g:a:2:1", 9, 0, 0},                    // a new instance of member a, nothing to give back
		{"g:a:2:1", 1000, 2, 2},                 // its first give-back
		{"g:a:1:2", 0, 0, 0},                    // the partition made again: its own total, from 0
		{"g:a:1:2", 2, 2, 2},                    // its first give-back: not read against g:a:1:1's 9
		{"g:c:1:1", -1000000, -1000000, -limit}, // a huge charge: one window (limit tokens) at most
		{"g:c:1:1", -3000000, -5, -limit},       // a known field, a huge difference: capped too
		{"g:c:1:1", -3000000, -5, 0},            // sent again: once
		{"g:c:1:1", -3000005, -5, -5},           // a charge within the cap: whole
	} {
		rdb.HSet(ctx, key, "tat", strconv.FormatFloat(start, 'f', 3, 64))
		before := tat()
		if err := redisquota.RunGiveback(s, name, step.field, step.cum, step.delta); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := (before - tat()) / interval; math.Abs(got-step.wantCredits) > 0.01 {
			t.Errorf("step %d: %s, cum %d, delta %d: credited %.3f tokens, want %v", i, step.field, step.cum, step.delta, got, step.wantCredits)
		}
	}
	if n := rdb.ZCard(ctx, key+":gb").Val(); n != 5 {
		t.Errorf("%d give-back fields recorded, want 5", n)
	}
}

// TestGivebackPartitionMadeAgain proves that a partition a Store forgot
// (dropped to make room, and collected once nothing held it) and makes
// again credits the bucket with what it gives back, no more and no less: its give-back total is its own, not the
// forgotten one's. The first partition gives back 37 tokens; the second
// gives back 2, and the bucket is credited 2 (read against the first's
// total, its calls would have charged 35, or 37 for its first, empty,
// one). The bucket is seeded far ahead, as in TestGivebackOnce, so that no
// lease is granted and no credit is hidden by the bucket's floor (now).
func TestGivebackPartitionMadeAgain(t *testing.T) {
	addr := redisAddr()
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(testPrefix(t, addr)))
	defer s.Close()
	const name = "giveback made again"
	const limit, window = 1000, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	key := s.StateKey(name)
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	credited := func(before float64) float64 { return (before - tat()) / interval }

	q1 := s.Partition(name)
	q1.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: 0, Reset: time.Now().Add(window)}, window)
	waitFor(t, "the bucket seeded", func() bool { return tat() > 0 })
	before := tat()
	redisquota.GiveBack(q1, 37)
	waitFor(t, "the first partition's give-back", func() bool { return s.Stats().Returned == 37 })
	if got := credited(before); math.Abs(got-37) > 0.01 {
		t.Fatalf("the first partition: credited %.3f tokens for 37 given back", got)
	}

	// The first partition's refiller keeps asking for a lease the bucket
	// refuses: the Store forgets it as if it had been collected.
	if !s.ForgetPartitionCollected(name) {
		t.Fatal("the Store did not hold the partition")
	}
	before = tat()
	q2 := s.Partition(name)
	if q2 == q1 {
		t.Fatal("the partition was not made again")
	}
	redisquota.GiveBack(q2, 2)
	waitFor(t, "the second partition's give-back", func() bool { return s.Stats().Returned == 39 })
	if got := credited(before); math.Abs(got-2) > 0.01 {
		t.Errorf("the partition made again: credited %.3f tokens for 2 given back", got)
	}
	f1, f2 := redisquota.GivebackField(q1), redisquota.GivebackField(q2)
	if f1 == f2 {
		t.Errorf("both partitions give back under the field %s", f1)
	}
	for _, f := range []string{f1, f2} {
		if !strings.HasPrefix(f, "g:"+s.MemberID()+":"+s.Instance()+":") {
			t.Errorf("the give-back field %s does not name the Store", f)
		}
	}
	// Each field holds "<total> <number>" (see leaseScript).
	var totals []string
	for _, v := range rdb.HMGet(ctx, key, f1, f2).Val() {
		total, _, _ := strings.Cut(fmt.Sprint(v), " ")
		totals = append(totals, total)
	}
	if fmt.Sprint(totals) != "[37 2]" {
		t.Errorf("the give-back totals in Redis are %v, want [37 2]", totals)
	}
}

// TestResetScript checks the script that resets a partition: it clears the
// pause and the quota (with its bucket and the give-back fields) as they
// were at the Reset, 10s before it runs; a pause set, or a quota written,
// by another Store after the Reset is kept; the resetting Store's own
// writes are cleared, whenever they ran. It records the reset in the state
// (for the members that miss its message), and tells the fleet what it
// kept.
func TestResetScript(t *testing.T) {
	s, rdb, prefix := scriptStore(t)
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, prefix+":events")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	const age = 10 * time.Second
	for i, tc := range []struct {
		name                 string
		pset, lset           time.Duration // how long before the script ran
		pby, lby             string        // "self": the resetting Store
		pauseLeft            time.Duration
		keepPause, keepQuota bool
	}{
		{"both before the reset", 20 * time.Second, 20 * time.Second, "other", "other", time.Minute, false, false},
		{"both after", 5 * time.Second, 5 * time.Second, "other", "other", time.Minute, true, true},
		{"the pause after", 5 * time.Second, 20 * time.Second, "other", "other", time.Minute, true, false},
		{"the quota after", 20 * time.Second, 5 * time.Second, "other", "other", time.Minute, false, true},
		{"the Store's own, after", 5 * time.Second, 5 * time.Second, "self", "self", time.Minute, false, false},
		{"a pause over", 5 * time.Second, 5 * time.Second, "other", "other", -time.Second, false, true},
		// Set ahead of Redis's clock, which no member writes (a corrupt
		// hand, a Redis failed over to a replica whose clock is behind):
		// not after the reset. Read as after it, the reset kept both, a
		// pause of up to MaxBelievedReset included.
		{"both set ahead", -time.Hour, -time.Hour, "other", "other", time.Minute, false, false},
	} {
		name := "reset " + tc.name
		key := s.StateKey(name)
		tm, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		now := tm.UnixMicro()
		by := func(who string) string {
			if who == "self" {
				return s.Instance()
			}
			return who
		}
		us := func(v int64) string { return strconv.FormatInt(v, 10) }
		rdb.HSet(ctx, key, "limit", 100, "window", 1000000, "lset", us(now-tc.lset.Microseconds()), "lby", by(tc.lby),
			"tat", us(now+1000000), "g:x:1", 7,
			"pause", us(now+tc.pauseLeft.Microseconds()), "pset", us(now-tc.pset.Microseconds()), "pby", by(tc.pby))
		if err := redisquota.RunReset(s, name, age, int64(i)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h := rdb.HGetAll(ctx, key).Val()
		_, pause := h["pause"]
		_, limit := h["limit"]
		_, tat := h["tat"]
		_, field := h["g:x:1"]
		if pause != tc.keepPause || limit != tc.keepQuota || tat != tc.keepQuota || field != tc.keepQuota {
			t.Errorf("%s: state after the reset %v; want the pause kept %v, the quota and its bucket %v", tc.name, h, tc.keepPause, tc.keepQuota)
		}
		if h["rby"] != s.Instance() || h["rseq"] != strconv.Itoa(i) || h["rat"] < us(now) {
			t.Errorf("%s: the reset recorded as run at %s by %s, number %s; want after %d by %s, number %d", tc.name, h["rat"], h["rby"], h["rseq"], now, s.Instance(), i)
		}
		if len(h) > 0 && rdb.PTTL(ctx, key).Val() < 23*time.Hour {
			t.Errorf("%s: the state expires in %v, want a day", tc.name, rdb.PTTL(ctx, key).Val())
		}
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := ps.ReceiveMessage(mctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: no message: %v", tc.name, err)
		}
		f := strings.Fields(m.Payload)
		if len(f) != 8 || f[0] != "r" || f[2] != s.Instance() || f[3] != strconv.Itoa(i) || f[5] != h["rat"] ||
			(f[4] != "0") != tc.keepPause || (f[6] != "0") != tc.keepQuota || (f[7] != "0") != tc.keepQuota {
			t.Errorf("%s: message %q", tc.name, m.Payload)
		}
	}
}

// TestResetRightAfterPause proves that a member that resets while its own
// pause is being written (a ResetHost right after a 429) is not paused
// again by it: the pause that comes back through the fleet's channel before
// the reset is ignored, and so is the pause Redis held, which the reset
// cleared. Another member ends unpaused too. Each round waits until both
// members applied the round's reset, the one Redis records (rat): told by
// the fleet's channel, or, when a reconnection lost its message, read by
// the resync after it.
func TestResetRightAfterPause(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sa := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer sa.Close()
	sb := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer sb.Close()
	const name = "reset after pause"
	a, b := sa.Partition(name), sb.Partition(name)
	qa, qb := a.(resilient.QuotaResetter), b
	a.Learn(quota(1000), time.Second)
	takeToken(t, a)
	takeToken(t, b)
	rdb := newRedis(t, addr)
	for i := range 20 {
		a.Pause(time.Now().Add(10 * time.Minute))
		qa.Reset()
		if got := a.PauseUntil(); !got.IsZero() {
			t.Fatalf("round %d: paused until %v right after Reset", i, got)
		}
		waitFor(t, "A's reset run in Redis", func() bool { return sa.Stats().ResetsSent > int64(i) })
		rat, err := rdb.HGet(context.Background(), sa.StateKey(name), "rat").Int64()
		if err != nil {
			t.Fatalf("round %d: the reset recorded in Redis: %v", i, err)
		}
		waitFor(t, "the reset comes back to both", func() bool {
			if got := a.PauseUntil(); !got.IsZero() {
				t.Fatalf("round %d: paused again until %v after Reset", i, got)
			}
			return redisquota.LastReset(a) >= rat && redisquota.LastReset(b) >= rat
		})
		if got := qb.PauseUntil(); got.After(time.Now()) {
			t.Fatalf("round %d: B paused until %v after the reset", i, got)
		}
		if v, err := rdb.HGet(context.Background(), sa.StateKey(name), "pause").Result(); err != redis.Nil {
			t.Fatalf("round %d: Redis holds a pause (%q, %v) after the reset", i, v, err)
		}
	}
	if d, ok, _ := a.Take(time.Now()); !ok || d != 0 {
		t.Errorf("A's Take after the reset = %v, %v; want a token at once", d, ok)
	}
}
