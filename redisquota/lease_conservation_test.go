package redisquota_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// leaseFault is what happens to one call of the lease script.
type leaseFault int

const (
	faultNone       leaseFault = iota // it runs, and its reply comes
	faultLost                         // it runs; its reply is lost
	faultResent                       // it runs twice (go-redis resends it); the second reply comes
	faultResentLost                   // it runs twice; no reply comes
	faultLate                         // it does not run yet: Redis runs it late
	faultResendLate                   // it runs; go-redis's resend of it runs late
	faultBadReply                     // it runs; its reply does not parse
	faultKinds
)

// leaseFaults is a go-redis hook that does to each call of the lease
// script the fault the test set (next), and keeps the calls Redis is to
// run late for the test to send.
type leaseFaults struct {
	mu   sync.Mutex
	next leaseFault
	late [][]any
}

func (h *leaseFaults) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *leaseFaults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) < 2 || a[1] != redisquota.LeaseHash {
			return next(ctx, cmd)
		}
		h.mu.Lock()
		f := h.next
		h.next = faultNone
		if f == faultLate || f == faultResendLate {
			h.late = append(h.late, a)
		}
		h.mu.Unlock()
		lost := errors.New("redisquota test: the lease call's reply is lost")
		if f == faultLate {
			cmd.SetErr(lost)
			return lost
		}
		if err := next(ctx, cmd); err != nil {
			return err
		}
		switch f {
		case faultResent, faultResentLost:
			if err := next(ctx, cmd); err != nil {
				return err
			}
		case faultBadReply:
			cmd.(*redis.Cmd).SetVal([]any{"x"})
			return nil
		}
		if f == faultNone || f == faultResent {
			return nil
		}
		cmd.SetErr(lost)
		return lost
	}
}
func (h *leaseFaults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// set makes f the fault of the next call of the lease script.
func (h *leaseFaults) set(f leaseFault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next = f
}

// takeLate returns one of the calls kept to run late, chosen by r, and
// forgets it; nil for none.
func (h *leaseFaults) takeLate(r *mrand.Rand) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.late) == 0 {
		return nil
	}
	i := r.IntN(len(h.late))
	a := h.late[i]
	h.late = append(h.late[:i], h.late[i+1:]...)
	return a
}

// TestLeaseConservationProperty runs, for several seeds, a random
// interleaving of one member's lease calls and give-backs whose replies
// are lost, whose calls go-redis resends, that Redis runs late (before or
// after the member's Close) or whose replies do not parse, and checks
// that the fleet's bucket took, to the token, what the member got less
// what it gave back: no lease's tokens went to nobody, and none were
// credited twice.
func TestLeaseConservationProperty(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	for seed := range uint64(64) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			leaseConservationRun(t, addr, prefix, rdb, seed)
		})
	}
}

func leaseConservationRun(t *testing.T, addr, prefix string, rdb *redis.Client, seed uint64) {
	ctx := context.Background()
	r := mrand.New(mrand.NewPCG(seed, 0x5eed))
	h := new(leaseFaults)
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	// A quota whose interval (about 1ms) and burst (20,000 tokens) let
	// the bucket's next token lie 10s ahead, where neither Redis's clock
	// nor a give-back brings it back to now within the test: it moves
	// by the tokens taken and given back alone.
	const limit, window = 1000000, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	name := "lease conservation " + strconv.FormatUint(seed, 10)
	key := s.StateKey(name)
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	tat0 := float64(now.UnixMicro()) + 10e6
	rdb.HSet(ctx, key, "limit", limit, "window", window.Microseconds(), "lheard", now.UnixMicro(),
		"tat", strconv.FormatFloat(tat0, 'f', 3, 64))
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	q := s.QuietPartition(name, limit, window)
	if err := redisquota.Lease(q); err != nil { // loads the script: the hook sees its hash from now on
		t.Fatalf("the first lease: %v", err)
	}
	var log []string
	var given int64
	for range 120 {
		f := leaseFault(r.IntN(int(faultKinds)))
		if r.IntN(3) == 0 {
			f = faultNone
		}
		switch op := r.IntN(5); {
		case op < 2:
			h.set(f)
			err := redisquota.Lease(q)
			log = append(log, fmt.Sprintf("lease(fault %d): %v", f, err != nil))
		case op < 4:
			got := s.Stats().Tokens
			n := min(int64(r.IntN(50)+1), max(got-given, 0))
			given += n
			h.set(f)
			err := redisquota.GiveBackNow(q, n)
			log = append(log, fmt.Sprintf("giveback %d(fault %d): %v", n, f, err != nil))
		default:
			if a := h.takeLate(r); a != nil {
				err := rdb.Do(ctx, a...).Err()
				log = append(log, fmt.Sprintf("late run of seq %v: %v", a[22], err))
			}
		}
	}
	h.set(faultNone)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	for a := h.takeLate(r); a != nil; a = h.takeLate(r) {
		err := rdb.Do(ctx, a...).Err()
		log = append(log, fmt.Sprintf("late run after Close of seq %v: %v", a[22], err))
	}
	st := s.Stats()
	held := st.Tokens - st.Returned
	if got := (tat() - tat0) / interval; math.Abs(got-float64(held)) > 0.01 {
		t.Errorf("seed %d: the bucket took %.3f tokens, want %d, the member's (got %d, gave back %d); the calls:\n%s",
			seed, got, held, st.Tokens, st.Returned, fmt.Sprintln(log))
	}
}
