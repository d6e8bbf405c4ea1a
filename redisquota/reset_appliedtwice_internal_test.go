package redisquota

import (
	"strconv"
	"testing"
	"time"
)

// TestResetReadFromStateNotAppliedAgainByItsMessage checks that a reset
// the member applied from the state a lease call read after it ran (its
// message still on its way: the reply overtook it) is not applied again
// when its message comes: applied from the state, it kept what the state
// held since (a quota another member wrote again after it, and the lease
// the call granted from it; a pause set after it); applied again from its
// message, which tells what the state held when the reset ran, it dropped
// that lease, whose tokens the bucket had counted, forgot that quota, so
// that the member's attempts went unpaced, and cleared that pause, until
// the later messages came. Nor may the messages published before the
// reset, which come before its own, bring back the pause or the quota it
// cleared (its message, skipped, clears them no more); what the fleet
// publishes after the read is applied.
func TestResetReadFromStateNotAppliedAgainByItsMessage(t *testing.T) {
	now := time.Now()
	redisNow := now.UnixMicro()
	at := redisNow - 2000 // the reset ran 2ms before the lease call
	message := "r id1 other 1 0 " + strconv.FormatInt(at, 10) + " 0 0"
	reset := fleetReset{store: "other", seq: 1, at: at}

	t.Run("lease and quota", func(t *testing.T) {
		_, p := hostileStore()
		r := leaseReply{granted: 10, interval: 100000, limit: 10, window: 1000000, now: redisNow, members: 1, reset: reset, heardAge: 0, held: -1}
		l := &lease{base: p.s.since(now), interval: 1e8, n: 10, recv: p.s.since(now), expire: 4e8}
		p.mu.Lock()
		p.applyLease(r, l, p.gen.Load(), p.told, 10, now)
		p.mu.Unlock()
		if p.cur.Load() != l {
			t.Fatal("the lease was not installed: the test no longer tests the reset")
		}
		p.s.apply(message, now)
		if p.cur.Load() != l {
			t.Errorf("the reset's message, after the state that recorded it, dropped the lease granted after it")
		}
		if got := p.limit.Load(); got != 10 {
			t.Errorf("the reset's message, after the state that recorded it, left the quota %d, want the 10 written after it", got)
		}
	})
	t.Run("pause set after it", func(t *testing.T) {
		p := stateReadPart(leaseReply{pause: redisNow + (10 * time.Minute).Microseconds(), now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		if p.PauseUntil().IsZero() {
			t.Fatal("the pause set after the reset did not reach the member: the test no longer tests the reset")
		}
		p.s.apply(message, now)
		if p.PauseUntil().IsZero() {
			t.Errorf("the reset's message, after the state that recorded it, cleared the pause set after it")
		}
	})
	t.Run("an earlier reset's message between", func(t *testing.T) {
		// Two resets' messages on their way: the earlier one, which kept
		// a pause, told after the state that recorded the later one,
		// which cleared it. Neither message may leave the member paused
		// by it (the later one's, skipped as told by the state, clears
		// it no more: the earlier one's must not bring it back).
		p := stateReadPart(leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		kept := strconv.FormatInt(redisNow+(10*time.Minute).Microseconds(), 10)
		p.s.apply("r id1 another 1 "+kept+" "+strconv.FormatInt(at-1000, 10)+" 0 0", now)
		if pu := p.PauseUntil(); !pu.IsZero() {
			t.Errorf("the earlier reset's message, after the state that recorded the later one, paused the member for %v by the pause the later one cleared", time.Until(pu).Round(time.Minute))
		}
		p.s.apply(message, now)
		if pu := p.PauseUntil(); !pu.IsZero() {
			t.Errorf("the later reset's message left the member paused for %v by the pause it cleared", time.Until(pu).Round(time.Minute))
		}
	})
	// The messages published before the reset, which it cleared, come
	// before its own: after the state that recorded it, they must not
	// bring back what it cleared (nothing would clear it again, its own
	// message being skipped).
	t.Run("a pause published before it", func(t *testing.T) {
		p := stateReadPart(leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		until := strconv.FormatInt(redisNow+(10*time.Minute).Microseconds(), 10)
		p.s.apply("p id1 "+until+" "+strconv.FormatInt(at-500, 10), now)
		p.s.apply(message, now)
		if pu := p.PauseUntil(); !pu.IsZero() {
			t.Errorf("a pause published before the reset, told after the state that recorded it, paused the member for %v", time.Until(pu).Round(time.Minute))
		}
	})
	t.Run("a quota published before it", func(t *testing.T) {
		p := stateReadPart(leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		p.s.apply("q id1 50 1000000", now)
		p.s.apply(message, now)
		if got := p.limit.Load(); got != 0 {
			t.Errorf("a quota published before the reset, told after the state that recorded it, left the member a quota of %d", got)
		}
		// One published after the reset, which comes after its message,
		// is the fleet's.
		p.s.apply("q id1 60 1000000", now)
		if got := p.limit.Load(); got != 60 {
			t.Errorf("a quota published after the reset left the quota %d, want 60", got)
		}
	})
	// What the fleet publishes after the state read is not ignored.
	t.Run("a pause published after the read", func(t *testing.T) {
		p := stateReadPart(leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		until := strconv.FormatInt(redisNow+(10*time.Minute).Microseconds(), 10)
		p.s.apply("p id1 "+until+" "+strconv.FormatInt(redisNow+100, 10), now)
		if p.PauseUntil().IsZero() {
			t.Errorf("a pause published after the state read was ignored")
		}
	})
	t.Run("a quota after a reset of long ago", func(t *testing.T) {
		// A reset that ran an hour before the read (before the member
		// used the partition): its message is not on its way, and a
		// quota told after the read is the fleet's.
		_, p := hostileStore()
		old := fleetReset{store: "other", seq: 1, at: redisNow - time.Hour.Microseconds()}
		r := leaseReply{now: redisNow, members: 1, reset: old, heardAge: -1, held: -1}
		p.mu.Lock()
		p.applyLease(r, nil, p.gen.Load(), p.told, 0, now)
		p.mu.Unlock()
		p.s.apply("q id1 50 1000000", now)
		if got := p.limit.Load(); got != 50 {
			t.Errorf("a quota told after a state that recorded a reset of an hour ago left the quota %d, want 50", got)
		}
	})
	t.Run("the member's own reset", func(t *testing.T) {
		// The member's own reset, read from the state with the lease the
		// call granted after it, then told back: the hold ends, and the
		// lease and the quota written since stay.
		s, p := hostileStore()
		s.instance = "me"
		p.hold.Store(&resetHold{seq: 1, at: s.since(now) - int64(5*time.Millisecond), until: s.since(now) + int64(resetHoldMax)})
		own := fleetReset{store: "me", seq: 1, at: at}
		r := leaseReply{granted: 10, interval: 100000, limit: 10, window: 1000000, now: redisNow, members: 1, reset: own, heardAge: 0, held: -1}
		l := &lease{base: s.since(now), interval: 1e8, n: 10, recv: s.since(now), expire: 4e8}
		p.mu.Lock()
		p.applyLease(r, l, p.gen.Load(), p.told, 10, now)
		p.mu.Unlock()
		s.apply("r id1 me 1 0 "+strconv.FormatInt(at, 10)+" 0 0", now)
		if p.hold.Load() != nil {
			t.Errorf("the member's own reset, told back, left its hold")
		}
		if p.cur.Load() != l || p.limit.Load() != 10 {
			t.Errorf("the member's own reset's message, after the state that recorded it, dropped the lease (%v) or the quota (%d) granted after it", p.cur.Load() != l, p.limit.Load())
		}
	})
	t.Run("a message past the bound", func(t *testing.T) {
		// A message received resetHoldMax after the read was not on its
		// way: it is applied.
		p := stateReadPart(leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}, now)
		until := strconv.FormatInt(redisNow+(10*time.Minute).Microseconds(), 10)
		p.s.apply("p id1 "+until+" "+strconv.FormatInt(at-500, 10), now.Add(resetHoldMax))
		if p.PauseUntil().IsZero() {
			t.Errorf("a pause told resetHoldMax after the state read was ignored")
		}
	})
}

// stateReadPart returns a partition of a hostile Store that applied r, a
// lease call's reply that granted no lease, received at now: the state
// read the tests of a reset's message follow.
func stateReadPart(r leaseReply, now time.Time) *part {
	_, p := hostileStore()
	p.mu.Lock()
	p.applyLease(r, nil, p.gen.Load(), p.told, 0, now)
	p.mu.Unlock()
	return p
}
