package redisquota_test

import (
	"context"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// pausedSync is a go-redis hook that holds the first sync of the budgets
// after it is armed until release is closed, then sends it.
type pausedSync struct {
	armed   atomic.Bool
	held    chan struct{} // closed once the sync is held
	release chan struct{}
}

func (h *pausedSync) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pausedSync) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pausedSync) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if isBudgetSync(cmds) && h.armed.CompareAndSwap(true, false) {
			close(h.held)
			<-h.release
		}
		return next(ctx, cmds)
	}
}

// TestCloseChargesNoClosedDebt proves that the tokens a request takes from
// a closed partition's local limiter, while Close is still writing
// (between its stop of the refillers and the partitions' last writes),
// are not charged to the fleet's bucket: a closed member's requests pace
// at its share of the part of the quota the bucket never grants, and are
// charged to the bucket no more. (Close's last write of the partition
// charged them, as the debt of a member pacing locally while Redis did
// not answer.)
func TestCloseChargesNoClosedDebt(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	h := &pausedSync{held: make(chan struct{}), release: make(chan struct{})}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithBudgetSync(time.Hour), redisquota.WithTimeout(5*time.Second))
	t.Cleanup(func() { s.Close() })
	b := s.Budget("https://api.example.com:443", closeBudget)
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	const name = "close debt"
	const limit, window = 1000, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	key := s.StateKey(name)
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	q := s.Partition(name)
	// A bucket seeded far ahead: no lease is granted, and the member's
	// requests wait for the fleet's tokens until Close.
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: 0, Reset: time.Now().Add(window)}, window)
	waitFor(t, "the bucket seeded", func() bool { return tat() > 0 })
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	before := tat()
	h.armed.Store(true) // Close's last sync, held until the request took its token
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-h.held
	taken := 0
	for range 10 {
		if _, ok, _ := q.Take(time.Now()); ok {
			taken++
		}
	}
	close(h.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if taken == 0 {
		t.Fatal("the closed partition gave no token, want its local limiter's")
	}
	if got := (tat() - before) / interval; math.Abs(got) > 0.01 {
		t.Errorf("Close charged the bucket %.3f tokens for the %d the closed partition's requests took, want 0", got, taken)
	}
}
