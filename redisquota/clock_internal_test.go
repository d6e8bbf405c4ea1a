package redisquota

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient/internal/wallclock"
)

// TestPauseUntilWallReading checks that PauseUntil's time reads the wall
// clock as it reads now, not as it read when the Store was made: the
// Transport compares it with a server's dates (a rate-limit reset, times
// without a monotonic reading) on the wall clock, and with its own times on
// the monotonic one. The Store here was made before the wall clock stepped
// an hour back. Made from the Store's epoch, PauseUntil read an hour late
// on the wall clock: a pause that had ended looked later than a reset the
// Transport had just been given, and hid it.
func TestPauseUntilWallReading(t *testing.T) {
	made := time.Now().Add(-time.Hour)
	s := &Store{epoch: wallclock.Stepped(t, made, time.Hour)} // the wall clock stepped an hour back since
	p := newPart(s, "x", "id1", "g:x")
	now := time.Now()
	u := now.Add(30 * time.Second)
	p.pause.Store(s.since(u))
	got := p.PauseUntil()
	if d := got.Sub(now); d != 30*time.Second {
		t.Errorf("PauseUntil is %v after now on the monotonic clock, want 30s", d)
	}
	if d := got.Round(0).Sub(u.Round(0)); d < -time.Second || d > time.Second {
		t.Errorf("PauseUntil's wall-clock reading is %v off a reading of now+30s, want within a second", d)
	}
	reset := u.Round(0).Add(time.Minute) // a server's date, a minute after the pause
	if !reset.After(got) {
		t.Errorf("a reset a minute after the pause is not after PauseUntil on the wall clock")
	}
}
