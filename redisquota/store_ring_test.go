package redisquota_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestNewRingRefusedClearly: a *redis.Ring is a redis.UniversalClient, the
// type New takes, but its shards relay no pub/sub to one another: the
// scripts publish the fleet's messages on the shard of each partition's
// keys, and a subscription reaches one shard only. New refuses it with a
// panic of its own that says so, as the options refuse what they cannot
// take; it panicked inside go-redis ("at least one channel is required"),
// from the subscription New makes without a channel.
func TestNewRingRefusedClearly(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": redisAddr()}})
	t.Cleanup(func() { ring.Close() })
	prefix := testPrefix(t, redisAddr())
	var got any
	func() {
		defer func() { got = recover() }()
		s := redisquota.New(ring, redisquota.WithPrefix(prefix))
		s.Close()
	}()
	msg, _ := got.(string)
	if !strings.HasPrefix(msg, "redisquota: New: ") || !strings.Contains(msg, "Ring") {
		t.Fatalf("New(*redis.Ring) panicked with %q, want a redisquota panic that names the Ring", got)
	}
}
