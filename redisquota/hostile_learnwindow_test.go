package redisquota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestHostileWindowReportedOver proves that a window in Redis that no
// member writes (10^300 µs, written by a corrupt or hostile hand over a
// quota the fleet holds), found by a member's report of the quota it holds
// while less than half of it is left, fails no call: the script answered
// with the held window as the time to the next report, a number that does
// not parse, and the member, which reports before it leases, failed each
// step, paced alone and called Redis once a second for as long as the key
// lived (each report refreshing it), the lease that would delete the
// window never sent.
func TestHostileWindowReportedOver(t *testing.T) {
	for _, confirm := range []bool{true, false} {
		t.Run("confirm="+strconv.FormatBool(confirm), func(t *testing.T) {
			s, rdb, _ := scriptStore(t)
			ctx := context.Background()
			const name = "https://api.example.com reads"
			key := s.StateKey(name)
			if err := rdb.HSet(ctx, key, "limit", 100, "window", "1e300").Err(); err != nil {
				t.Fatal(err)
			}
			_, next, err := redisquota.RunLearn(s, name, 100, time.Second, 10, confirm)
			if err != nil {
				t.Fatalf("RunLearn over a window of 1e300µs: %v", err)
			}
			if next <= 0 || next > resilient.MaxBelievedReset {
				t.Errorf("RunLearn: next report in %v, want within (0, %v]", next, resilient.MaxBelievedReset)
			}
			w, err := rdb.HGet(ctx, key, "window").Result()
			if confirm && err == nil {
				t.Errorf("window in Redis %q after a report, want it deleted, for the member to write its own", w)
			}
			if !confirm && w != "1000000" {
				t.Errorf("window in Redis %q (%v) after a write of 1s, want 1000000", w, err)
			}
		})
	}
}

// TestHostileWindowMidRunRecovers proves that a member whose state in
// Redis gets a window no member writes while it runs (10^300 µs) recovers:
// its next report of the quota, made while less than half of it is left,
// writes its own window over it, and its Redis calls succeed again,
// instead of failing once a second for as long as the key lived.
func TestHostileWindowMidRunRecovers(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	ctx := context.Background()
	const name = "https://api.example.com writes"
	q := s.Partition(name)
	q.Learn(quota(100), time.Second)
	if !tokenWithin(q, waitBound) {
		t.Fatalf("no token within waitBound; stats %+v", s.Stats())
	}
	key := s.StateKey(name)
	if err := rdb.HSet(ctx, key, "window", "1e300").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HDel(ctx, key, "lseen", "lset").Err(); err != nil {
		t.Fatal(err)
	}
	redisquota.Elapse(q, time.Hour)
	q.Learn(resilient.RateLimitInfo{Limit: 100, Remaining: 10}, time.Second)
	deadline := time.Now().Add(waitBound)
	for {
		w, err := rdb.HGet(ctx, key, "window").Result()
		if err == nil {
			if us, perr := strconv.ParseInt(w, 10, 64); perr == nil && us > 0 && time.Duration(us)*time.Microsecond <= resilient.MaxBelievedReset {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("window in Redis still %q (%v) after waitBound; stats %+v", w, err, s.Stats())
		}
		tokenWithin(q, 50*time.Millisecond)
	}
	before := s.Stats().Errors
	for range 20 {
		tokenWithin(q, 50*time.Millisecond)
	}
	if after := s.Stats().Errors; after != before {
		t.Errorf("Redis calls still failing once the window was written over: errors %d -> %d", before, after)
	}
}
