package redisquota_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestUnlimitedShortWindowLeasesGrow: a quota past any pace (2^62 a
// millisecond) makes the member's share of the lease time more tokens
// than an int64 holds. Converted before it was capped, the lease size
// overflowed to one token: each request cost a Redis round trip. Leases
// double up to their cap, as for any quota.
func TestUnlimitedShortWindowLeasesGrow(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer s.Close()
	q := s.Partition("https://api.example.com reads")
	q.Learn(quota(min(1<<62, math.MaxInt)), time.Millisecond) // 2^62 where an int holds it
	const taken = 300
	for range taken {
		takeToken(t, q)
	}
	// 1, 2, 4, ..., 256: 9 leases (and a few more for tokens that expired
	// untaken on a busy machine).
	if n := s.Stats().Leases; n > taken/10 {
		t.Errorf("%d tokens took %d leases; want at most %d", taken, n, taken/10)
	}
}

// TestStaleLimitLeaseBounded: a member that has not heard that the fleet's
// quota fell (its message lost, or a limit it learned and did not write)
// sizes its lease by the quota it believes, and the lease script granted
// it whole at the pace of the quota Redis holds: 1000 tokens of a quota of
// 100 a second, ten seconds of the whole fleet's quota in one lease, the
// other members' leases refused meanwhile. A lease reaches no further than
// the script's horizon (four lease times) past its first token.
func TestStaleLimitLeaseBounded(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const name = "https://api.example.com reads"
	q := s.Partition(name)
	q.Learn(quota(100000), time.Second)
	for s.Stats().Tokens < 2000 { // leases doubled up to their cap, 1000
		takeToken(t, q)
	}
	time.Sleep(100 * time.Millisecond) // the tokens held expire untaken
	// The fleet's quota falls to 100 a second; the member misses its message.
	if err := rdb.HSet(ctx, s.StateKey(name), "limit", 100).Err(); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	takeToken(t, q)
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > before.Leases })
	const want = 76 // 800ms of 95 a second
	if got := s.Stats().Tokens - before.Tokens; got > want {
		t.Errorf("lease after the quota fell to 100/s = %d tokens, want at most %d", got, want)
	}
	if l, _ := redisquota.Known(q); l != 100 {
		t.Errorf("Known() limit = %d, want 100", l)
	}
}
