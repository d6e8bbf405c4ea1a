package redisquota

import (
	"strconv"
	"testing"
	"time"
)

// TestResetReadFromStateWhoseMessageCameBeforeQuotaTold checks that a
// member whose first state read of a partition applies a reset that ran
// just before it (less than resetHoldMax), whose message the member
// received before it used the partition (and dropped: no partition to
// apply it to), applies the quotas the fleet tells after the read. The
// reset's message came already: no quota that comes after the read was
// published before the reset. Ignored as awaiting it, the new quota of
// the fleet's bucket (seeded anew) did not reach the member, which kept
// waiting for the old bucket's next token (an hour away, for a quota of
// one an hour), and with no quota known, the member went unpaced.
func TestResetReadFromStateWhoseMessageCameBeforeQuotaTold(t *testing.T) {
	now := time.Now()
	redisNow := now.UnixMicro()
	at := redisNow - 2000 // the reset ran 2ms before the read
	message := "r id1 other 1 0 " + strconv.FormatInt(at, 10) + " 0 0"
	reset := fleetReset{store: "other", seq: 1, at: at}
	// The Store receives the reset's message before the member uses the
	// partition: not used here, a lease reads it when it is.
	newStore := func() (*Store, *part) {
		s := &Store{parts: map[string]*part{}, byID: map[string]*part{}, epoch: time.Now().Add(-time.Hour)}
		s.apply(message, now)
		p := newPart(s, "x", "id1", s.totalField("g", 1))
		s.parts["x"], s.byID["id1"] = p, p
		return s, p
	}

	t.Run("dry bucket", func(t *testing.T) {
		_, p := newStore()
		// The state: the reset, and a quota of one an hour written
		// after it, whose bucket is dry for an hour.
		hour := time.Hour.Microseconds()
		r := leaseReply{base: hour, interval: float64(hour), limit: 1, window: hour, now: redisNow, members: 1, reset: reset, heardAge: 0, held: -1}
		p.mu.Lock()
		p.applyLease(r, nil, p.gen.Load(), p.told, 1, now)
		p.mu.Unlock()
		if p.dryUntil.Load() == 0 || p.limit.Load() != 1 {
			t.Fatal("the read did not find the bucket dry: the test no longer tests the reset")
		}
		// Another member writes a new quota (seeding the bucket anew).
		p.s.apply("q id1 100 "+strconv.FormatInt(hour, 10), now)
		if got := p.limit.Load(); got != 100 {
			t.Errorf("a quota the fleet told after the read left the quota %d, want 100", got)
		}
		if p.dryUntil.Load() != 0 {
			t.Errorf("a quota the fleet told after the read, which seeded the bucket anew, left the member waiting for the old bucket's next token")
		}
	})
	t.Run("no quota", func(t *testing.T) {
		_, p := newStore()
		r := leaseReply{now: redisNow, members: 1, reset: reset, heardAge: -1, held: -1}
		p.mu.Lock()
		p.applyLease(r, nil, p.gen.Load(), p.told, 0, now)
		p.mu.Unlock()
		p.s.apply("q id1 50 1000000", now)
		if got := p.limit.Load(); got != 50 {
			t.Errorf("a quota the fleet told after the read left the member unpaced (quota %d, want 50)", got)
		}
	})
}
