package redisquota

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
)

// benchBudget returns a budget of a Store on the test Redis.
func benchBudget(b *testing.B) *budget {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { rdb.Close() })
	prefix := "rqbench:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := New(rdb, WithPrefix(prefix))
	b.Cleanup(func() {
		s.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return s.Budget("bench", resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}).(*budget)
}

// BenchmarkBudgetDeposit measures a deposit into a full view, the steady
// state of a healthy host: an atomic load, no write, no I/O.
func BenchmarkBudgetDeposit(b *testing.B) {
	bg := benchBudget(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bg.Deposit(0.2)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bg.Deposit(0.2)
			}
		})
	})
}

// BenchmarkBudgetWithdraw measures a throttled retry's withdrawal and a
// deposit that pays it back: compare-and-swaps, no I/O.
func BenchmarkBudgetWithdraw(b *testing.B) {
	bg := benchBudget(b)
	b.ReportAllocs()
	for b.Loop() {
		bg.Withdraw(0.1)
		bg.Deposit(0.2)
	}
}
