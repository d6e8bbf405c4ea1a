package redisquota_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

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
// Redis: 4 processes of 8 goroutines each share one quota of 300 requests
// a second through their Stores. It holds them to the targets that do not
// depend on the machine's speed: no call fails, at most 1% of the attempts
// get a 429, at most 0.1 Redis round trips per request once warm. Quota
// use and fairness depend on each process getting the CPU to take its
// tokens in time, which a busy 2-core machine running four race-enabled
// processes does not promise: they are held to looser bounds (80%, ±25%)
// and logged; the fleet demo measures them against the targets (≥ 90%,
// ±10%) on a quiet machine.
func TestFleet(t *testing.T) {
	addr := redisAddr()
	res := runFleet(t, fleet.Config{
		Procs: 4, Workers: 8, Limit: 300, Window: time.Second,
		Duration: 6 * time.Second, Warmup: time.Second, Latency: time.Millisecond,
		Store: true, RedisAddr: addr, Prefix: testPrefix(t, addr),
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
	if res.QuotaUsed < 0.80 {
		t.Errorf("%.1f%% of the quota used, want at least 80%% (90%% on a quiet machine)", 100*res.QuotaUsed)
	}
	if res.MaxShareDev > 0.25 {
		t.Errorf("shares %.3f: a process is %.1f%% off its fair share, want at most 25%% (10%% on a quiet machine)", res.Shares, 100*res.MaxShareDev)
	}
}

// TestFleetPause proves that after the first 429, no more requests reach
// the server during its Retry-After than were in flight when it was sent:
// the pause reaches every process before it sends again.
func TestFleetPause(t *testing.T) {
	addr := redisAddr()
	res := runFleet(t, fleet.Config{
		Procs: 4, Workers: 8, Limit: 400, Window: time.Second,
		Duration: 4 * time.Second, Warmup: time.Second, Latency: 5 * time.Millisecond,
		Store: true, RedisAddr: addr, Prefix: testPrefix(t, addr),
		PauseAt: 500, PauseFor: time.Second,
	})
	t.Logf("after the 429: %d requests reached the server during its pause, %d were in flight when it was sent", res.PauseHits, res.PauseInflight)
	if res.PauseInflight == 0 || res.PauseHits > res.PauseInflight {
		t.Errorf("%d requests reached the server during the pause, %d were in flight", res.PauseHits, res.PauseInflight)
	}
	if res.Failed != 0 {
		t.Errorf("%d calls failed", res.Failed)
	}
}
