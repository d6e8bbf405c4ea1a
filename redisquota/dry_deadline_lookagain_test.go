package redisquota_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/internal/wallclock"
	"github.com/resilienthttp/resilient/redisquota"
)

// leaseGate is a go-redis hook that holds the lease script's calls while
// closed: a Redis that has taken the call and not answered yet.
type leaseGate struct {
	mu      sync.Mutex
	open    chan struct{} // nil while calls go through
	entered chan struct{} // gets a value when a call is held
}

// hold makes the next lease calls wait until release.
func (g *leaseGate) hold() {
	g.mu.Lock()
	g.open, g.entered = make(chan struct{}), make(chan struct{}, 1)
	g.mu.Unlock()
}

// release lets the held calls go.
func (g *leaseGate) release() {
	g.mu.Lock()
	close(g.open)
	g.open = nil
	g.mu.Unlock()
}

func (g *leaseGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *leaseGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && a[1] == redisquota.LeaseHash {
			if name, _ := a[0].(string); strings.EqualFold(name, "evalsha") {
				g.mu.Lock()
				open, entered := g.open, g.entered
				g.mu.Unlock()
				if open != nil {
					select {
					case entered <- struct{}{}:
					default:
					}
					select {
					case <-open:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (g *leaseGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// dryPartition returns a partition of a Store under a prefix of the test's
// own whose refiller does not run (the test makes its Redis calls), after
// a lease call that found the fleet's bucket (10 per 10s) held by other
// members until dry from now, with the Store's lease calls held by g when
// it holds them.
func dryPartition(t *testing.T, g *leaseGate, dry time.Duration) (q resilient.QuotaPartition, rdb *redis.Client, key string) {
	t.Helper()
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr, g), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	rdb = newRedis(t, addr)
	key = s.StateKey("p")
	spendFleet(t, rdb, key, dry)
	q = s.QuietPartition("p", 10, 10*time.Second)
	redisquota.Hush(q)
	if err := redisquota.Lease(q); err != nil {
		t.Fatal(err)
	}
	if d := redisquota.DryUntil(q); d < dry/2 {
		t.Fatalf("after a lease of a bucket spent for %v: dry for %v; want over %v", dry, d, dry/2)
	}
	return q, rdb, key
}

// TestDryBucketCallInProgressFallsBack: the fleet's bucket was found dry
// for 15s, and the member's next Redis call (the refiller's, or one that
// writes a quota the member learned) has not been answered yet: Redis
// hangs. The member falls back to its local limiter WithFallbackAfter
// after the call started, as it does whenever Redis does not answer, and
// an attempt that must start within 1s waits for that, as before the
// dry-deadline check: it is not refused at once on the reading the call
// in progress is about to replace (or, if Redis never answers, that the
// fallback does not heed).
func TestDryBucketCallInProgressFallsBack(t *testing.T) {
	g := new(leaseGate)
	q, _, _ := dryPartition(t, g, 15*time.Second)
	taker := q.(resilient.QuotaDeadlineTaker)
	g.hold()
	done := make(chan error, 1)
	go func() { done <- redisquota.Lease(q) }()
	defer func() {
		g.release()
		<-done
	}()
	<-g.entered // the call is in progress, unanswered
	at := time.Now()
	deadline := at.Add(time.Second)
	d, ok, _ := taker.TakeBefore(at, deadline)
	if ok {
		t.Fatalf("TakeBefore = %v, true with no token held and Redis not answering for less than WithFallbackAfter; want a wait", d)
	}
	if !at.Add(d).Before(deadline) {
		t.Errorf("TakeBefore(now, now+1s) while a Redis call is in progress = %v, false: the Transport refuses the attempt at once; want a look again before the deadline (the member falls back to its local limiter WithFallbackAfter after the call started)", d)
	}
}

// TestDryBucketLookAgainBeforeNextLease: the member's lease call found the
// fleet's bucket dry until a time after an attempt's deadline, but the
// refiller asks Redis again 4×WithLeaseTime before that time, which is
// before the deadline: by then the others may have given their tokens
// back (a member going idle, leases expiring untaken), or Redis lost the
// bucket, and the lease is granted at once. An attempt that can wait for
// that call is not refused at once on the old reading; it waits, as before
// the dry-deadline check, and is sent at the token the call brings.
func TestDryBucketLookAgainBeforeNextLease(t *testing.T) {
	g := new(leaseGate)
	q, rdb, key := dryPartition(t, g, 5*time.Second)
	taker := q.(resilient.QuotaDeadlineTaker)
	// The deadline comes after the refiller's next lease call
	// (dryUntil - 4×WithLeaseTime) and before dryUntil.
	at := time.Now()
	deadline := at.Add(redisquota.DryUntil(q) - 2*redisquota.DefaultLeaseTime)
	d, ok, _ := taker.TakeBefore(at, deadline)
	if ok {
		t.Fatalf("TakeBefore = %v, true with no token held; want a wait", d)
	}
	if !at.Add(d).Before(deadline) {
		t.Errorf("TakeBefore(now, dryUntil-2×WithLeaseTime) = %v, false: the Transport refuses the attempt at once; want a look again before the deadline: the refiller's next lease call, at dryUntil-4×WithLeaseTime, comes before it", d)
	}
	// The others give their tokens back; the refiller's next call gets
	// one, which an attempt waiting takes.
	spendFleet(t, rdb, key, 0)
	if err := redisquota.Lease(q); err != nil {
		t.Fatal(err)
	}
	at = time.Now()
	if d, ok, _ := taker.TakeBefore(at, deadline); !ok {
		t.Errorf("TakeBefore after the fleet gave its tokens back and a lease call = %v, false; want a token", d)
	}
}

// TestDryDeadlineOnWallClock: a caller's context deadline made from a
// date (time.Unix, a deadline propagated from upstream as a timestamp)
// carries no monotonic reading, and the wall clock stepped an hour back
// since the Store was made (NTP, an operator setting the date). The
// Transport reads such a deadline on the wall clock, as it reads now: 10s
// away. The member holds no token, has found the fleet's bucket dry never,
// and waits for its refiller's lease: the attempt looks again in
// WithFallbackAfter, or when the lease comes. Read against the Store's
// start on the wall clock, the deadline was two hours early, before any dry
// time, even none: TakeBefore answered a delay of minus the Store's age,
// which the Transport takes as "ask again in a millisecond", a look (and a
// kick of the refiller) each millisecond until the lease comes.
func TestDryDeadlineOnWallClock(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	if err := rdb.HSet(context.Background(), s.StateKey("p"), map[string]any{"limit": 10, "window": 10000000}).Err(); err != nil {
		t.Fatal(err)
	}
	q := s.QuietPartition("p", 10, 10*time.Second)
	redisquota.Hush(q)
	taker := q.(resilient.QuotaDeadlineTaker)
	if err := redisquota.Lease(q); err != nil {
		t.Fatal(err)
	}
	if at := time.Now(); redisquota.Held(q) != 1 {
		t.Fatalf("after a lease of a full bucket: %d tokens held; want 1", redisquota.Held(q))
	} else if d, ok, _ := taker.TakeBefore(at, at.Add(10*time.Second)); !ok {
		t.Fatalf("TakeBefore of the token held = %v, false; want it taken", d)
	}
	now := wallclock.Stepped(t, time.Now(), -2*time.Hour)
	deadline := now.Round(0).Add(10 * time.Second) // a date: no monotonic reading
	d, ok, _ := taker.TakeBefore(now, deadline)
	if ok {
		t.Fatalf("TakeBefore = %v, true with no token held; want a wait", d)
	}
	if d <= 0 || !now.Add(d).Before(deadline) {
		t.Errorf("TakeBefore(now, a date 10s from now), the wall clock stepped two hours back since the Store was made, no token held, the bucket never found dry = %v, false; want a look again in WithFallbackAfter (%v)",
			d, redisquota.DefaultFallbackAfter)
	}
}
