package redisquota_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// This file holds tests that hold back or fail the Store's Redis calls
// (gateHook) to reach the orders of calls, messages and resets that a
// mutation pass found untested.

// gateHook holds the commands that match (by their arguments) until
// released, telling each one held on seen; with fail set, it fails every
// command instead, as a Redis that does not answer, and a held command
// once released.
type gateHook struct {
	match   func(args []any) bool
	seen    chan string // the script hash of each command held
	release chan struct{}
	fail    atomic.Bool
	leases  atomic.Int64 // lease script calls that succeeded
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.fail.Load() {
			err := errors.New("redis down (test)")
			cmd.SetErr(err)
			return err
		}
		if h.match != nil && h.match(cmd.Args()) {
			hash, _ := cmd.Args()[1].(string)
			h.seen <- hash
			select {
			case <-h.release:
			case <-ctx.Done():
				cmd.SetErr(ctx.Err())
				return ctx.Err()
			}
			if h.fail.Load() {
				// Failed while held: Redis went down during the call.
				err := errors.New("redis down (test)")
				cmd.SetErr(err)
				return err
			}
		}
		err := next(ctx, cmd)
		if err == nil && evalsha(redisquota.LeaseHash)(cmd.Args()) {
			h.leases.Add(1)
		}
		return err
	}
}

func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.fail.Load() {
			err := errors.New("redis down (test)")
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// anyOf matches what one of matchers matches.
func anyOf(matchers ...func(args []any) bool) func(args []any) bool {
	return func(a []any) bool {
		for _, m := range matchers {
			if m(a) {
				return true
			}
		}
		return false
	}
}

// TestResetDuringLeaseDropsItsReply proves that the reply of a lease call
// made before a Reset is not applied after it: a member's first call reads
// the fleet's pause, another member's, and the member resets the partition
// while the call is out. The pause the call read is the one the Reset
// clears: the member stays unpaused, whether or not Redis has run the reset
// yet.
func TestResetDuringLeaseDropsItsReply(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	const name = "https://api.example.com reads"
	b := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	defer b.Close()
	b.Partition(name).Pause(time.Now().Add(time.Minute))
	waitFor(t, "B's pause written", func() bool { return b.Stats().PausesSent == 1 })

	h := &gateHook{match: anyOf(evalsha(redisquota.LeaseHash), evalsha(redisquota.ResetHash)), seen: make(chan string, 4), release: make(chan struct{})}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	defer a.Close()
	defer close(h.release)
	q := a.Partition(name)
	q.Take(time.Now()) // starts the refiller: its first call reads the state
	if got := <-h.seen; got != redisquota.LeaseHash {
		t.Fatalf("first call held: %s, want the lease script's", got)
	}
	q.(resilient.QuotaResetter).Reset()
	h.release <- struct{}{} // the lease call goes on, and its reply comes after the Reset
	if got := <-h.seen; got != redisquota.ResetHash {
		t.Fatalf("second call held: %s, want the reset script's", got)
	}
	// The reply of the call made before the Reset is in: held, the reset
	// has not run in Redis.
	if pu := q.PauseUntil(); !pu.IsZero() {
		t.Errorf("after its Reset, with a lease reply read before it, the member is paused for %v; want no pause", time.Until(pu).Round(time.Second))
	}
}

// TestFallbackTokensChargedToBucket proves that the tokens a member sends
// on its local limiter while Redis does not answer are charged to the
// fleet's bucket once Redis answers again: the fleet does not send them a
// second time. The bucket is seeded spent (nothing remains of a quota of
// 1000 per 1000s until its reset, 1000s away), so that no lease is granted
// and the charge shows whole in the bucket.
func TestFallbackTokensChargedToBucket(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &gateHook{}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	defer s.Close()
	const name = "fallback-debt"
	const limit, window = 1000, 1000 * time.Second
	q := s.Partition(name)
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: 0, Reset: time.Now().Add(window)}, window)
	rdb := newRedis(t, addr)
	tat := func() float64 {
		v, err := rdb.HGet(context.Background(), s.StateKey(name), "tat").Result()
		if err != nil {
			return 0
		}
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	waitFor(t, "the bucket seeded", func() bool { return tat() > 0 && redisquota.StateRead(q) })
	before := tat()

	h.fail.Store(true)
	// A report of the window held to write: the refiller calls Redis, which
	// fails, and the member paces locally.
	redisquota.Elapse(q, window)
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: -1}, window)
	// The local limiter's burst: 2% of the quota.
	const sent = limit * 2 / 100
	waitFor(t, "the tokens sent on the local limiter", func() bool {
		if s.Stats().Fallbacks < sent {
			q.Take(time.Now())
		}
		return s.Stats().Fallbacks == sent
	})
	calls := h.leases.Load()
	h.fail.Store(false)
	waitFor(t, "a lease call after Redis answers again", func() bool { return h.leases.Load() > calls })

	interval := float64(window.Microseconds()) / (limit * 0.95)
	if charged := (tat() - before) / interval; math.Abs(charged-sent) > 0.01 {
		t.Errorf("%d tokens sent while Redis did not answer: the bucket was charged %.3f", sent, charged)
	}
}

// TestResetIgnoresEarlierFleetPause proves that a member that reset a
// partition ignores a pause the fleet's channel brings while its reset has
// not run in Redis: the reset, which runs after the pause was written,
// clears it. The member's reset is held (its script call does not reach
// Redis) while another member's pause comes through the channel.
func TestResetIgnoresEarlierFleetPause(t *testing.T) {
	a, qa, qb, h := fleetWithHeldScript(t, redisquota.ResetHash)
	start := time.Now()
	qa.(resilient.QuotaResetter).Reset()
	<-h.seen // A's reset is held, not run in Redis
	qb.Pause(time.Now().Add(time.Minute))
	waitFor(t, "B's pause at A", func() bool { return a.Stats().PausesReceived == 1 })
	if time.Since(start) >= time.Second/2 {
		t.Skip("B's pause came to A after half of its hold of the fleet's messages (resetHoldMax): too slow a machine to tell")
	}
	if pu := qa.PauseUntil(); !pu.IsZero() {
		t.Errorf("A, whose reset is to run, took the pause B wrote before it: paused for %v; want none", time.Until(pu).Round(time.Second))
	}
}

// TestFleetResetKeepsOwnPauseNotWritten proves that a member keeps the
// pause it set when another member's reset comes through the fleet's
// channel before the pause was written to Redis: the reset ran before the
// write, which sets the pause after it. The member's pause write is held
// (its script call does not reach Redis) while the other member resets.
func TestFleetResetKeepsOwnPauseNotWritten(t *testing.T) {
	a, qa, qb, h := fleetWithHeldScript(t, redisquota.PauseHash)
	qa.Pause(time.Now().Add(time.Minute))
	<-h.seen // A's pause is held, not written to Redis
	qb.(resilient.QuotaResetter).Reset()
	waitFor(t, "B's reset at A", func() bool { return a.Stats().ResetsReceived == 1 })
	if pu := qa.PauseUntil(); pu.IsZero() {
		t.Errorf("A's pause, not written yet, dropped by B's reset; want its minute kept")
	} else if left := time.Until(pu); left < 30*time.Second {
		t.Errorf("A's pause, not written yet, after B's reset: %v left; want its minute kept", left.Round(time.Second))
	}
}

// TestFailedCallWakesWaitingAttempts proves that an attempt waiting for the
// partition's first Redis call is woken when the call fails (its channel,
// and PauseChanged's, closed: the fall back to local pacing), not when
// WithFallbackAfter runs out, here far longer than the test.
func TestFailedCallWakesWaitingAttempts(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	// The partition's first call (the refiller's, started by Partition) is
	// held until Take has looked, then fails: failing it at once would let
	// it fail before Take, which then paces locally as it should.
	var armed atomic.Bool
	h := &gateHook{
		match: func(args []any) bool {
			name, _ := args[0].(string)
			return armed.Load() && len(args) > 1 && strings.EqualFold(name, "evalsha")
		},
		seen:    make(chan string, 16),
		release: make(chan struct{}),
	}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix), redisquota.WithFallbackAfter(time.Hour))
	defer s.Close()
	waitFor(t, "the subscription", s.Subscribed)
	armed.Store(true)
	q := s.Partition("https://api.example.com reads")
	<-h.seen // the partition's first call, held
	_, ok, ready := q.Take(time.Now())
	if ok {
		t.Fatal("Take before the state is read gave a token; want a wait for the read")
	}
	h.fail.Store(true)
	close(h.release) // the held call fails (see gateHook)
	select {
	case <-ready:
	case <-time.After(waitBound):
		t.Fatalf("the partition's Redis call failed: the waiting attempt not woken within %v", waitBound)
	}
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Error("after the failed call, Take gave no token; want one paced locally")
	}
}

// TestResetWrittenAfterOutage proves that a member's Reset made while Redis
// does not answer is written once Redis answers again, though nobody used
// the partition since: the refiller whose calls fail does not stop at
// idleExit (2s) with a reset to write, which the member promises the fleet.
func TestResetWrittenAfterOutage(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &gateHook{}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	defer s.Close()
	q := s.Partition("https://api.example.com reads")
	q.Learn(quota(100), time.Second)
	waitFor(t, "the state read", func() bool {
		q.Take(time.Now())
		return redisquota.StateRead(q)
	})
	h.fail.Store(true)
	q.(resilient.QuotaResetter).Reset()
	time.Sleep(3 * time.Second) // past idleExit, no demand: the refiller's calls fail meanwhile
	h.fail.Store(false)
	waitFor(t, "the reset written", func() bool { return s.Stats().ResetsSent == 1 })
}

// fleetWithHeldScript returns member A, whose calls of the script of hash
// its hook holds until the test ends, with A's and another member B's
// partitions of one name, once A read its state and both subscribed to the
// fleet's channel; the Stores close when the test ends.
func fleetWithHeldScript(t *testing.T, hash string) (*redisquota.Store, resilient.QuotaPartition, resilient.QuotaPartition, *gateHook) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	const name = "https://api.example.com reads"
	h := &gateHook{match: evalsha(hash), seen: make(chan string, 4), release: make(chan struct{})}
	a := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	b := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() {
		b.Close()
		close(h.release)
		a.Close()
	})
	qa, qb := a.Partition(name), b.Partition(name)
	waitFor(t, "A's state read", func() bool {
		qa.Take(time.Now())
		return redisquota.StateRead(qa) && a.Subscribed() && b.Subscribed()
	})
	return a, qa, qb, h
}
