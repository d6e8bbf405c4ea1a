package redisquota_test

import (
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// Every replica of a service builds its client so: the replicas then share
// each API's quota, what one learns of it, every 429's pause, and each
// host's retry budget.
func Example() {
	// ContextTimeoutEnabled: go-redis then honors the Store's
	// WithTimeout on each call.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	store := redisquota.New(rdb, redisquota.WithPrefix("myservice:quota"))
	defer store.Close()

	client := &http.Client{Transport: resilient.New(nil,
		resilient.WithQuotaStore(store),
		// One quota per API key, whatever the host and method.
		resilient.WithRateLimitKey(func(r *http.Request) string { return r.Header.Get("X-Api-Key-Id") }),
	)}
	_ = client // client.Do(req) …
}
