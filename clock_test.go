package resilient

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestCallClockMonotonic checks that a callClock's times carry a monotonic
// reading and fall between the time.Now readings taken around them, on a
// fresh epoch and on a kept one.
func TestCallClockMonotonic(t *testing.T) {
	var c callClock
	for i := range 3 {
		before := time.Now()
		got := c.now()
		after := time.Now()
		if got == got.Round(0) {
			t.Fatalf("reading %d has no monotonic reading: %v", i, got)
		}
		if got.Before(before) || got.After(after) {
			t.Fatalf("reading %d = %v, not within [%v, %v]", i, got, before, after)
		}
	}
}

// TestCallClockFakeTime checks a callClock inside a synctest bubble: its
// times are the bubble's, an epoch read outside the bubble is not used, and
// the epoch is renewed after clockRenewal, so that a step of the wall clock
// shows.
func TestCallClockFakeTime(t *testing.T) {
	var c callClock
	outside := c.now() // an epoch from outside the bubble
	synctest.Test(t, func(t *testing.T) {
		if got, want := c.now(), time.Now(); !got.Equal(want) {
			t.Fatalf("in the bubble, now = %v, want the bubble's %v (epoch read outside: %v)", got, want, outside)
		}
		epoch := *c.epoch.Load()
		time.Sleep(clockRenewal / 2)
		if got, want := c.now(), time.Now(); !got.Equal(want) {
			t.Fatalf("after %v, now = %v, want %v", clockRenewal/2, got, want)
		}
		if e := *c.epoch.Load(); !e.Equal(epoch) {
			t.Fatalf("epoch renewed after %v (%v, was %v): it lasts %v", clockRenewal/2, e, epoch, clockRenewal)
		}
		time.Sleep(clockRenewal)
		want := time.Now()
		if got := c.now(); !got.Equal(want) {
			t.Fatalf("after the renewal, now = %v, want %v", got, want)
		}
		if e := *c.epoch.Load(); !e.Equal(want) {
			t.Fatalf("epoch = %v after %v, want it renewed to %v", e, clockRenewal*3/2, want)
		}
	})
}

// TestCallClockStaleEpoch checks that an epoch older than clockRenewal
// (one kept across a suspension of the machine, whose wall clock stepped)
// and one ahead of the clock (read in a synctest bubble, or restored from a
// snapshot) are not used: the clock reads the time afresh.
func TestCallClockStaleEpoch(t *testing.T) {
	for _, off := range []time.Duration{-time.Hour, -clockRenewal, time.Hour} {
		var c callClock
		epoch := time.Now().Add(off)
		c.epoch.Store(&epoch)
		before := time.Now()
		got := c.now()
		after := time.Now()
		if got.Before(before) || got.After(after) {
			t.Errorf("epoch %v from now: now = %v, not within [%v, %v]", off, got, before, after)
		}
		if e := c.epoch.Load(); e.Equal(epoch) {
			t.Errorf("epoch %v from now was kept", off)
		}
	}
}
