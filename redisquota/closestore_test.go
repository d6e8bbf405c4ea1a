package redisquota_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// closeHost is the name of the budget the Close tests withdraw from.
const closeHost = "https://api.example.com:443"

// closeStore returns a Store of the Close tests, under a prefix of the
// test's own and made with opts, on a client of the test Redis that runs
// hook (nil: none), closed when the test ends; a client of the test Redis
// for the test to read the fleet's balance; and the Store's budget named
// closeHost, of closeBudget.
func closeStore(t *testing.T, hook redis.Hook, opts ...redisquota.Option) (*redisquota.Store, *redis.Client, resilient.SharedBudget) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	var hooks []redis.Hook
	if hook != nil {
		hooks = append(hooks, hook)
	}
	s := redisquota.New(newRedis(t, addr, hooks...), append([]redisquota.Option{redisquota.WithPrefix(prefix)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s, rdb, s.Budget(closeHost, closeBudget)
}
