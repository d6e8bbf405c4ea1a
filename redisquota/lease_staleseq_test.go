package redisquota_test

import (
	"context"
	"errors"
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

// lostGiveback is a go-redis hook that fails the first call of the lease
// script after it is armed that gives tokens back (or, with want, that
// asks for tokens), without sending it, keeping its command's arguments:
// the test sends them later, as a Redis that ran the call late would.
type lostGiveback struct {
	want   bool // the call lost is one that asks for tokens
	armed  atomic.Bool
	failed chan []any // the arguments of the call failed
}

func (h *lostGiveback) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostGiveback) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		arg := 7 // the give-back
		if h.want {
			arg = 6
		}
		if len(a) < 8 || a[1] != redisquota.LeaseHash || fmt.Sprint(a[arg]) == "0" || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmd)
		}
		err := errors.New("redisquota test: the lease call's reply is late")
		cmd.SetErr(err)
		h.failed <- a
		return err
	}
}
func (h *lostGiveback) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLeaseStaleGivebackIgnored proves that a call of the lease script
// that reaches Redis after a later call of the same partition (the
// earlier one timed out on its way, or Close canceled it, and Redis ran
// it late) neither credits nor charges the bucket: the later one carried
// its give-back. (The script credited the difference between the two
// running totals, backwards: the tokens given back between them were
// charged to the bucket again, and the field moved back.)
func TestLeaseStaleGivebackIgnored(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	rdb := newRedis(t, addr)
	ctx := context.Background()
	h := &lostGiveback{failed: make(chan []any, 1)}
	s := redisquota.New(newRedis(t, addr, h), redisquota.WithPrefix(prefix))
	t.Cleanup(func() { s.Close() })
	const name = "lease stale giveback"
	const limit, window = 1000, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	key := s.StateKey(name)
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	q := s.Partition(name)
	// A bucket seeded far ahead: no lease is granted, and no credit is
	// hidden by the bucket's floor (now).
	q.Learn(resilient.RateLimitInfo{Limit: limit, Remaining: 0, Reset: time.Now().Add(window)}, window)
	waitFor(t, "the bucket seeded", func() bool { return tat() > 0 })
	before := tat()
	h.armed.Store(true)
	redisquota.GiveBack(q, 5)
	stale := <-h.failed
	redisquota.GiveBack(q, 3)
	waitFor(t, "the later give-backs", func() bool { return s.Stats().Returned == 8 })
	if got := (before - tat()) / interval; math.Abs(got-8) > 0.01 {
		t.Fatalf("credited %.3f tokens, want 8", got)
	}
	field := redisquota.GivebackField(q)
	held := rdb.HGet(ctx, key, field).Val()
	before = tat()
	if err := rdb.Do(ctx, stale...).Err(); err != nil {
		t.Fatalf("the stale call: %v", err)
	}
	if got := (before - tat()) / interval; math.Abs(got) > 0.01 {
		t.Errorf("the stale call credited %.3f tokens, want 0", got)
	}
	if got := rdb.HGet(ctx, key, field).Val(); got != held {
		t.Errorf("the give-back field after the stale call = %q, want %q, as the later call left it", got, held)
	}
}

// TestLeaseGivebackSeqScript checks the lease script's numbered
// give-backs: a call whose number is not ahead of the field's credits
// nothing and leaves the field; a field without a number (as a call
// without one writes it) is read as its total; a field whose number lies
// implausibly far ahead, or is no number, is not believed; a call without
// a number is credited as before.
func TestLeaseGivebackSeqScript(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const name = "giveback seq script"
	key := s.StateKey(name)
	const limit, window = 10, 1000 * time.Second
	interval := float64(window.Microseconds()) / (limit * 0.95)
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	start := float64(now.UnixMicro()) + 8*interval
	rdb.HSet(ctx, key, "limit", limit, "window", window.Microseconds())
	tat := func() float64 {
		f, _ := strconv.ParseFloat(rdb.HGet(ctx, key, "tat").Val(), 64)
		return f
	}
	const field = "g:a:1:1"
	for i, step := range []struct {
		set             string // the field written first; "" for as left
		cum, delta, seq int64  // seq -1: none
		wantCredits     float64
		wantField       string
	}{
		{"5", 8, 3, 1, 3, "8 1"},             // a field without a number: its total
		{"", 10, 2, 2, 2, "10 2"},            // the next total
		{"", 8, 3, 1, 0, "10 2"},             // the first call, late: nothing
		{"", 10, 2, 2, 0, "10 2"},            // the second again: nothing
		{"", 10, 0, 2, 0, "10 2"},            // a read, nothing to give back
		{"", 12, 2, 3, 2, "12 3"},            // the next
		{"0 99999999999", 3, 3, 3, 3, "3 3"}, // a number far ahead is not believed
		{"0 5", 3, 3, 4, 0, "0 5"},           // one ahead, but within the lag, is
		{"7 x", 9, 2, 4, 2, "9 4"},           // a number that is none
		{"7 nan", 9, 2, 4, 2, "9 4"},         // a NaN
		{"", 12, 3, -1, 3, "12"},             // a call without a number
		{"", 10, -2, 5, -2, "10 5"},          // a numbered charge after it
		{"", 12, 3, 4, 0, "10 5"},            // an older call, late: nothing
	} {
		if step.set != "" {
			rdb.HSet(ctx, key, field, step.set)
		}
		rdb.HSet(ctx, key, "tat", strconv.FormatFloat(start, 'f', 3, 64))
		var err error
		if step.seq < 0 {
			err = redisquota.RunGiveback(s, name, field, step.cum, step.delta)
		} else {
			err = redisquota.RunGivebackSeq(s, name, field, step.cum, step.delta, step.seq)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := (start - tat()) / interval; math.Abs(got-step.wantCredits) > 0.01 {
			t.Errorf("step %d: cum %d, seq %d: credited %.3f tokens, want %v", i, step.cum, step.seq, got, step.wantCredits)
		}
		if got := rdb.HGet(ctx, key, field).Val(); got != step.wantField {
			t.Errorf("step %d: the field holds %q, want %q", i, got, step.wantField)
		}
	}
}
