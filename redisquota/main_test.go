package redisquota_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/internal/leakcheck"
	"github.com/resilienthttp/resilient/redisquota/internal/fleet"
)

// TestMain runs a fleet worker when the test binary is started again as
// one (see internal/fleet), and otherwise the tests, failing the run if any
// leaves a goroutine behind: a closed Store stops every goroutine it
// started.
func TestMain(m *testing.M) {
	if fleet.RunWorker() {
		os.Exit(0)
	}
	// go-redis logs each failed dial; the tests that stop Redis make many.
	redis.SetLogger(quietLogger{})
	leakcheck.Main(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
