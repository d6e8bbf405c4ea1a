package redisquota_test

import (
	"context"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestFallbackStalledWrite proves the fallback bound when the Redis call
// that does not answer is one of the writes the refiller makes before a
// lease (here the pause a 429 set): the member paces locally after
// WithFallbackAfter, not after WithTimeout (a minute here), as it does when
// a lease call hangs.
func TestFallbackStalledWrite(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(100*time.Millisecond))
	defer s.Close()
	q := s.Partition("stalled")
	q.Learn(quota(100), time.Second)
	takeToken(t, q)
	waitFor(t, "a lease", func() bool { return s.Stats().Leases > 0 })

	admin := newRedis(t, rs.addr())
	// WRITE pauses every script until the test lifts it; the admin's
	// CLIENT UNPAUSE goes through.
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(context.Background(), "CLIENT", "UNPAUSE")
	// A 429's short pause: the member drops its leases, and its refiller
	// writes the pause, which Redis holds.
	q.Pause(time.Now().Add(50 * time.Millisecond))
	for i := range 3 {
		if !tokenWithin(q, 5*time.Second) {
			t.Fatalf("token %d: none in 5s while Redis hangs (WithFallbackAfter 100ms); stats %+v", i, s.Stats())
		}
	}
	if s.Stats().Fallbacks == 0 {
		t.Errorf("stats %+v: no token from the local limiter", s.Stats())
	}
}

// TestNewStalledRedis proves that New does not wait for Redis, as it
// promises: with Redis paused (CLIENT PAUSE ALL, for 8s), it returns at
// once, and the Store's partitions answer.
func TestNewStalledRedis(t *testing.T) {
	rs := startRedisServer(t)
	admin := newRedis(t, rs.addr())
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 8000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix("rqtest:stalled-new"))
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("New waited %v for a Redis paused 8s", d)
	}
	defer s.Close()
	q := s.Partition("p")
	q.Learn(quota(100), time.Second)
	takeToken(t, q)
}
