package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestHostileWindowBelowOneMicrosecond: a window in Redis shorter than
// any member writes (below 1µs: a member writes its windows in whole µs,
// rounded up), from a corrupt or hostile hand after the member wrote its
// quota. A window of 5e-324 seconds made the bucket's interval 0, a reply
// that does not parse: every lease failed, and the member paced alone, for
// as long as the state lived. Such a window is none: the lease script
// deletes it with its quota, and the member writes its own again.
func TestHostileWindowBelowOneMicrosecond(t *testing.T) {
	addr := redisAddr()
	rdb := newRedis(t, addr)
	ctx := context.Background()
	for _, window := range []string{"5e-324", "0.5"} {
		t.Run(window, func(t *testing.T) {
			prefix := testPrefix(t, addr)
			s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
			defer s.Close()
			const name = "https://api.example.com reads"
			q := s.Partition(name)
			q.Learn(quota(100), time.Second)
			takeToken(t, q)
			// The next lease (2 tokens) held: the member needs no other
			// until its tokens are taken.
			waitFor(t, "two leases", func() bool { return s.Stats().Leases >= 2 })
			if err := rdb.HSet(ctx, s.StateKey(name), "window", window).Err(); err != nil {
				t.Fatal(err)
			}
			leases := s.Stats().Leases
			for deadline := time.Now().Add(5 * time.Second); s.Stats().Leases <= leases; {
				if time.Now().After(deadline) {
					t.Fatalf("window %s: no lease in 5s; stats %+v", window, s.Stats())
				}
				tokenWithin(q, 10*time.Millisecond)
			}
		})
	}
}
