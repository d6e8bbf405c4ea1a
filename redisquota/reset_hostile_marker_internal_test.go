package redisquota

import (
	"strconv"
	"testing"
	"time"
)

// TestHostileResetTimeDoesNotStickTheMarker checks that a reset message
// whose time lies far ahead of Redis's clock (which no script publishes)
// does not stick the partition's latest-reset marker there: every reset
// the state records after it read as one the member had applied, and a
// member that missed a genuine reset's message stayed paused by the pause
// it cleared, though each lease and resync read that reset.
func TestHostileResetTimeDoesNotStickTheMarker(t *testing.T) {
	_, p := hostileStore()
	now := time.Now()
	redisNow := now.UnixMicro()
	p.s.apply("r id1 evil 1 0 9000000000000000000 0 0", now) // a reset "run" in 285,000 years
	p.s.apply("p id1 "+strconv.FormatInt(redisNow+(10*time.Minute).Microseconds(), 10)+" "+strconv.FormatInt(redisNow, 10), now)
	if p.PauseUntil().IsZero() {
		t.Fatal("the fleet's pause did not reach the member: the test no longer tests the reset")
	}
	// Another member's reset ran and cleared the pause; its message was
	// lost, and the member's resync reads it from the state.
	r := leaseReply{now: redisNow + 2000, reset: fleetReset{store: "other", seq: 1, at: redisNow + 1000}, heardAge: -1}
	p.mu.Lock()
	p.applyLease(r, nil, p.gen.Load(), p.told, 0, time.Now())
	p.mu.Unlock()
	if pu := p.PauseUntil(); !pu.IsZero() {
		t.Errorf("after a resync read the fleet's reset, the member is still paused for %v: the reset was not applied", time.Until(pu).Round(time.Minute))
	}
}
