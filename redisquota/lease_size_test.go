package redisquota_test

import (
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
