package redisquota_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestNewNilClientRefusedClearly: a nil client, untyped or a nil
// *redis.Client or *redis.ClusterClient (a constructor's error ignored, a
// field not set), is refused by New with a panic of its own that says so,
// as the options refuse what they cannot take; it panicked with a nil
// pointer dereference from inside go-redis, which named neither New nor
// the client.
func TestNewNilClientRefusedClearly(t *testing.T) {
	for name, rdb := range map[string]redis.UniversalClient{
		"nil":                      nil,
		"nil *redis.Client":        (*redis.Client)(nil),
		"nil *redis.ClusterClient": (*redis.ClusterClient)(nil),
	} {
		t.Run(name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				s := redisquota.New(rdb)
				s.Close()
			}()
			msg, _ := got.(string)
			if !strings.HasPrefix(msg, "redisquota: New: ") || !strings.Contains(msg, "nil") {
				t.Fatalf("New(%s) panicked with %v, want a redisquota panic that says the client is nil", name, got)
			}
		})
	}
}
