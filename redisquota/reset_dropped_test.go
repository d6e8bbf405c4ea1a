package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestResetOfDroppedPartitionReachesFleet proves that a Reset of a
// partition the Store dropped from its table to make room, which a
// Transport still holds (a rate-limit partition its table evicted while
// calls wait in it, whose store's partition ResetHost resets), clears the
// fleet's pause in Redis, for the other members too.
func TestResetOfDroppedPartitionReachesFleet(t *testing.T) {
	f := newPausedFleet(t, 10*time.Minute, nil)
	const name = fleetPartition
	held := f.sa.Partition(name) // as the evicted partition holds it
	if !f.sa.ForgetPartition(name) {
		t.Fatal("A's Store did not hold the partition")
	}
	if f.sa.HoldsPartition(name) {
		t.Fatal("A's Store still holds the partition in its table")
	}
	if held.PauseUntil().IsZero() || f.sb.Partition(name).PauseUntil().IsZero() {
		t.Fatal("the fleet is not paused")
	}
	held.(resilient.QuotaResetter).Reset()
	if !held.PauseUntil().IsZero() {
		t.Errorf("the dropped partition's pause after its Reset: %v, want none", held.PauseUntil())
	}
	waitFor(t, "B hears the reset", func() bool { return f.sb.Partition(name).PauseUntil().IsZero() })
}
