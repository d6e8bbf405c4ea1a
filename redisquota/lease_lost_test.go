package redisquota_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// lostLeaseBucket is a partition of s whose quota, 1000 per 1000s, makes
// each lease one token an interval (about 1.05s) ahead of the last, and
// tat, which reads its bucket's next token in intervals: the tokens the
// fleet took from it, to the token, for the length of a test.
func lostLeaseBucket(t *testing.T, s *redisquota.Store, rdb *redis.Client, name string) (resilient.QuotaPartition, func() float64) {
	t.Helper()
	const limit, window = 1000, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	key := s.StateKey(name)
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(context.Background(), key, "tat").Val(), 64)
		return f / interval
	}
	q := s.Partition(name)
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: limit, Reset: time.Now().Add(window)}, window)
	waitFor(t, "the first lease", func() bool { return s.Stats().Tokens > 0 })
	return q, tat
}

// TestLeaseLostReplyGivesTokensBack proves that the tokens of a lease
// whose reply the member did not get (its call timed out after Redis ran
// it) go back to the fleet's bucket with the member's next call, once:
// the bucket then counts only the tokens the member holds. (They were
// taken from the bucket for nobody, until their time passed.)
func TestLeaseLostReplyGivesTokensBack(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	var armed atomic.Bool
	h := &replyDropper{cmd: func(a []any) bool {
		return armed.Load() && len(a) > 6 && a[1] == redisquota.LeaseHash && fmt.Sprint(a[6]) != "0"
	}}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	q, tat := lostLeaseBucket(t, s, rdb, "lease lost reply")
	before, st := tat(), s.Stats()
	armed.Store(true)
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Fatal("Take() = false, want the first lease's token")
	}
	waitFor(t, "the lease after the one whose reply was lost", func() bool {
		dropped, _ := h.counts()
		return dropped && s.Stats().Tokens > st.Tokens
	})
	after := s.Stats()
	held := after.Tokens - st.Tokens - (after.Returned - st.Returned)
	if got := tat() - before; math.Abs(got-float64(held)) > 0.01 {
		t.Errorf("the bucket took %.3f tokens since, want %d, the member's: the lost lease's went to nobody", got, held)
	}
}

// TestLeaseLateCallGrantsNothing proves that a call of the lease script
// that Redis runs after the member's next call (the member gave up on it:
// it timed out on its way, or Close canceled it) grants no token: nobody
// would take them. (It took a lease's tokens from the fleet's bucket for
// nobody.)
func TestLeaseLateCallGrantsNothing(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	h := &lostGiveback{want: true, failed: make(chan []any, 1)}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	q, tat := lostLeaseBucket(t, s, rdb, "lease late call")
	st := s.Stats()
	h.armed.Store(true)
	if _, ok, _ := q.Take(time.Now()); !ok {
		t.Fatal("Take() = false, want the first lease's token")
	}
	late := <-h.failed
	waitFor(t, "the lease after the one that failed", func() bool { return s.Stats().Tokens > st.Tokens })
	before := tat()
	vals, err := rdb.Do(context.Background(), late...).Slice()
	if err != nil {
		t.Fatalf("the late call: %v", err)
	}
	if got := tat() - before; math.Abs(got) > 0.01 || fmt.Sprint(vals[0]) != "0" {
		t.Errorf("the late call granted %v tokens, the bucket took %.3f, want 0", vals[0], got)
	}
}

// TestLeasePlantedSeqHoldsBackOneCall proves that a number planted in a
// member's give-back field, ahead of the member's own (a corrupt or
// hostile hand), holds back one of its lease calls, not all of them: the
// script takes a call whose number is behind the field's for a late one
// and grants it nothing, and the member, told the field's number, numbers
// its next calls past it.
func TestLeasePlantedSeqHoldsBackOneCall(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	const name = "lease planted seq"
	q, _ := lostLeaseBucket(t, s, rdb, name)
	rdb.HSet(context.Background(), s.StateKey(name), redisquota.GivebackField(q), "0 1000000")
	for i := range 3 {
		st := s.Stats()
		if _, ok, _ := q.Take(time.Now()); !ok {
			t.Fatalf("Take() %d = false, want a lease's token", i)
		}
		waitFor(t, "the next lease", func() bool { return s.Stats().Tokens > st.Tokens })
	}
}
