package redisquota_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// closeBudget is the retry budget of the Close tests: a Burst of 10.
var closeBudget = resilient.RetryBudget{Ratio: 0.2, Burst: 10, ThrottledCost: 0.1}

// fleetBalance returns the fleet's balance of the budget named name in
// Redis, in thousandths of a token.
func fleetBalance(t *testing.T, rdb *redis.Client, s *redisquota.Store, name string) int64 {
	t.Helper()
	bal, err := rdb.HGet(context.Background(), s.BudgetKey(name), "bal").Int64()
	if err != nil {
		t.Fatalf("the fleet's balance: %v", err)
	}
	return bal
}

// TestCloseSyncsBudgets proves that Close sends what the member changed
// in its retry budgets since their last sync: a member that withdraws
// and gives back, then closes before its next sync, leaves the fleet's
// balance at the deposits less the withdrawals plus the give-backs.
// (Close stopped the syncer without a last sync: the withdrawals never
// reached Redis, and the fleet's balance stayed full.)
func TestCloseSyncsBudgets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withdraw []float64
		refund   []float64
		want     int64 // the fleet's balance after Close, in thousandths
	}{
		{"withdrawals", []float64{1, 1, 1}, nil, 7000},
		{"withdrawals and a give-back", []float64{1, 1, 1, 1}, []float64{1}, 7000},
		{"throttled withdrawals", []float64{0.1, 0.1, 0.1, 0.1, 0.1}, nil, 9500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No tick comes before Close: only the budget's first sync.
			s, rdb, b := closeStore(t, nil, redisquota.WithBudgetSync(time.Hour))
			waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
			for _, w := range tc.withdraw {
				if !b.Withdraw(w) {
					t.Fatalf("Withdraw(%v) = false, want true", w)
				}
			}
			for _, r := range tc.refund {
				b.(resilient.SharedBudgetRefunder).Refund(r)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			if got := fleetBalance(t, rdb, s, closeHost); got != tc.want {
				t.Errorf("fleet balance after Close = %v, want %v", got, tc.want)
			}
		})
	}
}

// heldSync is a go-redis hook that holds the first pipeline of the
// budgets' syncs until its context ends, as a Redis that does not answer
// would (run first when reply is set: Redis ran it, and its reply is
// lost), and lets the others through.
type heldSync struct {
	reply bool
	armed atomic.Bool
	held  chan struct{} // closed once the sync is held
}

func (h *heldSync) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *heldSync) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *heldSync) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !isBudgetSync(cmds) || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		if h.reply {
			next(ctx, cmds)
		}
		close(h.held)
		<-ctx.Done()
		for _, c := range cmds {
			c.SetErr(ctx.Err())
		}
		return ctx.Err()
	}
}

// isBudgetSync reports whether cmds are a sync of the budgets: their
// first command runs the budget script on a budget's key.
func isBudgetSync(cmds []redis.Cmder) bool {
	if len(cmds) == 0 {
		return false
	}
	args := cmds[0].Args()
	if len(args) <= 3 {
		return false
	}
	key, ok := args[3].(string)
	return ok && strings.HasSuffix(key, ":budget")
}

// TestCloseDuringSync proves that Close, called while a sync of the
// budgets is in progress and Redis does not answer it, neither hangs nor
// loses the changes the sync was sending, nor applies them twice when
// Redis ran the sync and only its reply was lost.
func TestCloseDuringSync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply bool
	}{
		{"unanswered", false},
		{"reply lost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &heldSync{reply: tc.reply, held: make(chan struct{})}
			s, rdb, b := closeStore(t, h, redisquota.WithBudgetSync(20*time.Millisecond))
			waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
			h.armed.Store(true) // the next sync, which the withdrawals make
			for range 2 {
				if !b.Withdraw(1) {
					t.Fatal("Withdraw(1) = false, want true")
				}
			}
			<-h.held
			if !b.Withdraw(1) {
				t.Fatal("Withdraw(1) = false during the sync, want true")
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			if got := fleetBalance(t, rdb, s, closeHost); got != 7000 {
				t.Errorf("fleet balance after Close = %v, want %v", got, 7000)
			}
		})
	}
}

// TestCloseRedisDown proves that Close returns, and says that the last
// sync of the budgets failed, when Redis is down or stalled at Close, or
// the client closed: the member's changes since the last sync are its
// own, and Close neither waits past the failed call nor retries it.
func TestCloseRedisDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) *redis.Client
	}{
		{"refused", func(t *testing.T) *redis.Client {
			return newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
		}},
		{"stalled", func(t *testing.T) *redis.Client {
			rdb := redis.NewClient(&redis.Options{Addr: stallingServer(t), MaxRetries: -1, ContextTimeoutEnabled: true})
			t.Cleanup(func() { rdb.Close() })
			return rdb
		}},
		{"client closed", func(t *testing.T) *redis.Client {
			rdb := newRedis(t, redisAddr())
			rdb.Close()
			return rdb
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redisquota.New(tc.rdb(t), redisquota.WithPrefix("rqtest:closedown"), redisquota.WithTimeout(100*time.Millisecond))
			b := s.Budget(closeHost, closeBudget)
			if !b.Withdraw(1) {
				t.Fatal("Withdraw(1) = false, want true")
			}
			err := s.Close()
			if err == nil || !strings.Contains(err.Error(), "redisquota: Close: the retry budgets' last sync failed") {
				t.Errorf("Close() = %v, want the last sync's error", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close() = %v, want nil", err)
			}
		})
	}
}

// TestCloseRacesWithdrawals proves that withdrawals racing Close are
// safe (the race detector watches), and that the fleet's balance counts
// those the last sync read, and no more: it lies between the burst less
// every withdrawal and the burst less those made before Close.
func TestCloseRacesWithdrawals(t *testing.T) {
	s, rdb, b := closeStore(t, nil, redisquota.WithBudgetSync(time.Hour))
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	var n atomic.Int64 // the withdrawals of 0.1 during Close
	var wg sync.WaitGroup
	stop := make(chan struct{})
	untilStopped(&wg, stop, 1, func() {
		if b.Withdraw(0.1) {
			n.Add(1)
		}
	})
	err := s.Close()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	got := fleetBalance(t, rdb, s, closeHost)
	if lo, hi := max(9000-100*n.Load(), 0), int64(9000); got < lo || got > hi {
		t.Errorf("fleet balance after Close = %v, want within [%v, %v] (%d withdrawals of 0.1 raced Close)", got, lo, hi, n.Load())
	}
}

// failedSyncs is a go-redis hook that fails the budgets' syncs at once
// while on is set, as a Redis gone would, and lets the others through.
type failedSyncs struct {
	on    atomic.Bool
	calls atomic.Int64 // the syncs it failed
}

func (h *failedSyncs) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failedSyncs) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failedSyncs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.on.Load() || !isBudgetSync(cmds) {
			return next(ctx, cmds)
		}
		h.calls.Add(1)
		err := errors.New("redisquota test: Redis gone")
		for _, c := range cmds {
			c.SetErr(err)
		}
		return err
	}
}

// TestCloseNothingToSend proves that Close, with Redis down, returns nil
// when the budgets hold no change of the member's since their last sync:
// a budget made and never used, or one whose withdrawals the syncer sent
// (its view below the burst), has nothing the fleet would lose, and its
// last sync is not even tried. (Close sent every budget a tick would sync,
// changed or not, and said that the last sync failed and its changes stay
// the member's when there were none.)
func TestCloseNothingToSend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withdraw bool // and wait for the syncer to send the withdrawal
	}{
		{"never used", false},
		{"withdrawal synced", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &failedSyncs{}
			h.on.Store(!tc.withdraw) // Redis gone from the start
			s, _, b := closeStore(t, h, redisquota.WithBudgetSync(20*time.Millisecond))
			if tc.withdraw {
				waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
				if !b.Withdraw(1) {
					t.Fatal("Withdraw(1) = false, want true")
				}
				waitFor(t, "the withdrawal's sync", func() bool {
					view, synced, _ := s.BudgetView(closeHost)
					return view == 9 && synced == 9
				})
				h.on.Store(true)
			} else {
				waitFor(t, "a failed sync", func() bool { return h.calls.Load() > 0 })
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		})
	}
}

// lateSync is a go-redis hook that holds the first sync of the budgets
// after it is armed until its context ends, then lets it run: a Redis
// whose reply comes just at the bound.
type lateSync struct {
	armed atomic.Bool
	held  chan struct{} // closed once the sync is held
}

func (h *lateSync) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *lateSync) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *lateSync) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !isBudgetSync(cmds) || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		close(h.held)
		<-ctx.Done()
		return next(context.WithoutCancel(ctx), cmds)
	}
}

// TestCloseTwiceWaits proves that a Close called while another is in
// progress returns once that one is done: its caller finds the member's
// withdrawals in the fleet's balance, as the first Close's would. (The
// second Close returned nil at once, while the first was still sending
// them; a caller that then closed its client, which it owns, lost them.)
func TestCloseTwiceWaits(t *testing.T) {
	h := &lateSync{held: make(chan struct{})}
	s, rdb, b := closeStore(t, h, redisquota.WithBudgetSync(time.Hour), redisquota.WithTimeout(time.Second))
	waitFor(t, "the budget's first sync", func() bool { return s.Stats().BudgetSyncs > 0 })
	if !b.Withdraw(1) {
		t.Fatal("Withdraw(1) = false, want true")
	}
	h.armed.Store(true) // Close's last sync
	first := make(chan error, 1)
	go func() { first <- s.Close() }()
	<-h.held
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if got := fleetBalance(t, rdb, s, closeHost); got != 9000 {
		t.Errorf("fleet balance after the second Close = %v, want %v", got, 9000)
	}
	if err := <-first; err != nil {
		t.Errorf("first Close() = %v, want nil", err)
	}
}
