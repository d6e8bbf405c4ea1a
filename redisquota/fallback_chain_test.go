package redisquota_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// TestFallbackBoundsCallsInARow proves the fallback bound when the
// refiller makes two Redis calls in a row for the attempts waiting for a
// token: the quota a response announced, then the lease. Redis answers
// each of them in less than WithFallbackAfter (a second here), and the
// two together in more: the attempts waited for both, the second call's
// start counting anew, well past the bound WithFallbackAfter promises
// (for a Redis slowed to 0.9 of it, nearly twice the bound; with a pause
// or a reset to write first, three times). An attempt paces locally once
// the partition's calls have kept it waiting for WithFallbackAfter,
// however many calls that was.
func TestFallbackBoundsCallsInARow(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	h := &scriptHolder{learn: make(chan time.Time, 1), lease: make(chan struct{}, 1),
		releaseLearn: make(chan struct{}), releaseLease: make(chan struct{})}
	rdb := newRedis(t, addr, h)
	if err := redisquota.LoadScripts(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	const bound = time.Second
	s := redisquota.New(rdb, redisquota.WithPrefix(prefix),
		redisquota.WithTimeout(time.Minute), redisquota.WithFallbackAfter(bound))
	defer s.Close()
	defer close(h.releaseLease)
	q := s.Partition("x")
	waitFor(t, "the state read", func() bool { return redisquota.StateRead(q) })
	h.holdLeases.Store(true)

	// A response announces the quota: the refiller writes it, then leases.
	q.Learn(quota(100), time.Second)
	var start time.Time
	select {
	case start = <-h.learn:
	case <-time.After(waitBound):
		t.Fatal("the quota's write did not reach Redis")
	}
	if _, ok, _ := q.Take(time.Now()); ok {
		t.Fatal("a token while the refiller's first call is out")
	}
	// Redis answers the write after 0.6 of the bound...
	time.Sleep(time.Until(start.Add(bound * 6 / 10)))
	close(h.releaseLearn)
	select {
	case <-h.lease:
	case <-time.After(waitBound):
		t.Fatal("the lease call did not reach Redis")
	}
	// ...and the lease is out: the attempt has waited for Redis for more
	// than the bound since the first call started.
	time.Sleep(time.Until(start.Add(bound * 21 / 20)))
	if d, ok, _ := q.Take(time.Now()); !ok {
		t.Errorf("Take, %v after the refiller's first call started (WithFallbackAfter %v), its second call out: no token, wait %v; stats %+v",
			time.Since(start).Round(time.Millisecond), bound, d, s.Stats())
	}
}

// scriptHolder is a go-redis hook that holds the calls of the learn
// script until releaseLearn is closed, sending the time each started on
// learn, and, once holdLeases is set, those of the lease script until
// releaseLease is closed, signalling each on lease.
type scriptHolder struct {
	holdLeases   atomic.Bool
	learn        chan time.Time
	lease        chan struct{}
	releaseLearn chan struct{}
	releaseLease chan struct{}
}

func (h *scriptHolder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptHolder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptHolder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		var release chan struct{}
		if len(a) > 1 && strings.EqualFold(a[0].(string), "evalsha") {
			switch {
			case a[1] == redisquota.LearnHash:
				select {
				case h.learn <- time.Now():
				default:
				}
				release = h.releaseLearn
			case a[1] == redisquota.LeaseHash && h.holdLeases.Load():
				select {
				case h.lease <- struct{}{}:
				default:
				}
				release = h.releaseLease
			}
		}
		if release != nil {
			select {
			case <-release:
			case <-ctx.Done():
				cmd.SetErr(ctx.Err())
				return ctx.Err()
			}
		}
		return next(ctx, cmd)
	}
}
