package redisquota_test

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/redisquota/internal/fleet"
)

// runFleet runs a fleet of worker processes: this test binary started
// again, whose TestMain runs the worker.
func runFleet(t *testing.T, cfg fleet.Config) fleet.Result {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res, err := fleet.Run(context.Background(), cfg, func() *exec.Cmd { return exec.Command(self) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d attempts, %.2f%% 429s, %.1f%% of the quota, shares %.3f (largest deviation %.1f%%), %.3f Redis round trips per request, added p50 %v p99 %v, %d calls failed, %d fallback tokens",
		res.Mode, res.Attempts, 100*res.RejectedShare, 100*res.QuotaUsed, res.Shares, 100*res.MaxShareDev,
		res.RoundTrips, res.AddedP50, res.AddedP99, res.Failed, res.Fallbacks)
	return res
}

// TestFleet runs the fleet of the targets with real processes on a real
// Redis: 4 processes of 8 goroutines each share one quota of 1,500
// requests per 5 seconds through their Stores, and it holds them to what
// does not depend on the machine's speed: no call fails, at most 1% of the
// attempts get a 429, at most 0.1 Redis round trips per request once warm
// (with leases of 400ms: a busy machine lets more tokens expire untaken,
// each lease then serving fewer requests; the demo measures 0.04 with the
// default 200ms on a quiet one). How much of the quota is used, and how
// evenly, depends on each race-enabled process getting the CPU to take its
// tokens in time, which a busy 2-core machine does not promise: the quota
// is held to 75% and the figures are logged; the fleet demo measures them
// against the targets (≥ 90%, ±10%), and TestFairShares the fairness of
// the leases alone. (A window of a second, as in the demo, would make the
// 429s depend on the machine too: under load the delays between a token
// and its request's arrival eat most of a one-second window's 5% margin,
// and with the server's Retry-After in whole seconds one 429 pauses the
// fleet for a whole window.)
func TestFleet(t *testing.T) {
	addr := redisAddr()
	res := runFleet(t, fleet.Config{
		Procs: 4, Workers: 8, Limit: 1500, Window: 5 * time.Second,
		Duration: 6 * time.Second, Warmup: time.Second, Latency: time.Millisecond,
		Store: true, RedisAddr: addr, Prefix: testPrefix(t, addr), LeaseTime: 400 * time.Millisecond,
	})
	if res.Failed != 0 {
		t.Errorf("%d calls failed", res.Failed)
	}
	if res.RejectedShare > 0.01 {
		t.Errorf("%.2f%% of the attempts got a 429, want at most 1%%", 100*res.RejectedShare)
	}
	if res.RoundTrips > 0.1 {
		t.Errorf("%.3f Redis round trips per request, want at most 0.1", res.RoundTrips)
	}
	if res.QuotaUsed < 0.75 {
		t.Errorf("%.1f%% of the quota used, want at least 75%% (90%% on a quiet machine)", 100*res.QuotaUsed)
	}
}

// TestFairShares proves that leases share the quota evenly among members
// of equal demand: 4 Stores, each with 4 goroutines taking tokens of one
// partition (1,000 a second) as fast as they are given, for 3 seconds;
// each member gets its fair share within ±25%. (Within ±10% on a quiet
// machine; on 2 busy cores a member's goroutines may wait to be run, and
// take fewer tokens for it: 11% under was seen. A lease that starves a
// member, the defect this guards against, leaves it far below.)
func TestFairShares(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	const members = 4
	var counts [members]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range members {
		s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
		defer s.Close()
		q := s.Partition("shared")
		q.Learn(quota(1000), time.Second)
		untilStopped(&wg, stop, 4, func() {
			d, ok, retry := q.Take(time.Now())
			timer := time.NewTimer(d)
			defer timer.Stop()
			select {
			case <-stop:
				return
			case <-timer.C:
			case <-retry:
			}
			if ok {
				counts[i].Add(1)
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // every member leasing at full size
	var start [members]int64
	for i := range counts {
		start[i] = counts[i].Load()
	}
	time.Sleep(3 * time.Second)
	var got [members]int64
	var total int64
	for i := range counts {
		got[i] = counts[i].Load() - start[i]
		total += got[i]
	}
	close(stop)
	wg.Wait()
	t.Logf("tokens per member in 3s: %v (%d in all, %.0f a second)", got, total, float64(total)/3)
	for i, n := range got {
		if dev := float64(n)*members/float64(total) - 1; dev > 0.25 || dev < -0.25 {
			t.Errorf("member %d got %d of %d tokens: %+.1f%% off its fair share", i, n, total, 100*dev)
		}
	}
	if total > 3*1000 {
		t.Errorf("%d tokens in 3s from a bucket of 950 a second", total)
	}
}

// TestFleetPause proves that the first 429's pause reaches every process
// while it lasts (through pub/sub, in about a millisecond on an idle
// machine), and that once it has reached a process, the process sends
// nothing more until it ends: at most one attempt per worker, one that
// passed the rate limiter just before the pause arrived. Without the pause
// shared, the other processes would keep sending until their leases ran
// out, tens of requests each, and would never see the pause. How long the
// pause took to arrive, and the requests the server saw meanwhile, depend
// on the machine's load: they are logged, not checked.
func TestFleetPause(t *testing.T) {
	addr := redisAddr()
	cfg := fleet.Config{
		Procs: 4, Workers: 8, Limit: 400, Window: time.Second,
		Duration: 4 * time.Second, Warmup: time.Second, Latency: 5 * time.Millisecond,
		Store: true, RedisAddr: addr, Prefix: testPrefix(t, addr),
		PauseAt: 500, PauseFor: 2 * time.Second,
	}
	res := runFleet(t, cfg)
	t.Logf("after the first 429: %d requests reached the server during its pause, %d were in flight when it reached its process; the pause reached the processes after %v; %d attempts sent after it reached theirs",
		res.PauseHits, res.PauseInflight, res.PauseReached, res.PauseLate)
	if len(res.PauseReached) != cfg.Procs {
		t.Fatalf("pause reached %d processes of %d", len(res.PauseReached), cfg.Procs)
	}
	for i, d := range res.PauseReached {
		if d < 0 || d >= cfg.PauseFor {
			t.Errorf("process %d: the pause reached it after %v, not during the pause (%v)", i, d, cfg.PauseFor)
		}
	}
	if res.PauseLate > cfg.Procs*cfg.Workers {
		t.Errorf("%d attempts sent after the pause reached their process, want at most one per worker (%d)", res.PauseLate, cfg.Procs*cfg.Workers)
	}
	if res.Failed != 0 {
		t.Errorf("%d calls failed", res.Failed)
	}
}
