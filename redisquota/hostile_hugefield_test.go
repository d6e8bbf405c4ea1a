package redisquota_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota"
)

// replySizer records the longest string of the lease script's replies.
type replySizer struct {
	mu      sync.Mutex
	leases  int
	longest int
}

func (r *replySizer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *replySizer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		a := cmd.Args()
		if len(a) < 2 || a[1] != redisquota.LeaseHash {
			return err
		}
		if c, ok := cmd.(*redis.Cmd); ok && err == nil {
			vals, _ := c.Slice()
			r.mu.Lock()
			r.leases++
			for _, v := range vals {
				if s, ok := v.(string); ok && len(s) > r.longest {
					r.longest = len(s)
				}
			}
			r.mu.Unlock()
		}
		return err
	}
}

func (r *replySizer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestHostileHugeResetFieldsNotReturned: a corrupt or hostile hand writes
// a huge string (4 MiB here; Redis takes 512 MiB) under the latest reset's
// fields of a partition's state (rby, rat, rseq), which no member writes
// longer than an instance id or a number. The lease script returned them
// as they were in every reply: each lease call, and each state read of a
// resync, carried the string to the member, megabytes a call, every
// WithLeaseTime, for as long as the state lived (a day after its last use).
// A value no member writes is none: the reply carries none of it.
func TestHostileHugeResetFieldsNotReturned(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	sizer := new(replySizer)
	s := redisquota.New(newRedis(t, addr, sizer), redisquota.WithPrefix(prefix))
	defer s.Close()
	rdb := newRedis(t, addr)
	huge := strings.Repeat("x", 4<<20)
	if err := rdb.HSet(context.Background(), s.StateKey("p"), "rby", huge, "rat", "1"+strings.Repeat("0", 4<<20), "rseq", huge).Err(); err != nil {
		t.Fatal(err)
	}
	q := s.Partition("p")
	q.Learn(quota(100), time.Second)
	waitFor(t, "a lease", func() bool {
		takeToken(t, q)
		sizer.mu.Lock()
		defer sizer.mu.Unlock()
		return sizer.leases >= 2
	})
	sizer.mu.Lock()
	defer sizer.mu.Unlock()
	if sizer.longest > 1024 {
		t.Errorf("the lease script's replies carry a string of %d bytes, the hostile reset fields'; want none of them", sizer.longest)
	}
}
