package resilient

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineWatchEndAtEpoch: a deadline that ends exactly at the watch's
// epoch (the first attempt's start: an attempt that started earlier, its
// end already passed, or a budget ending then) is not taken for "no
// deadline". Taken so, it cleared the watch's earliest deadline: it never
// fired by itself, and the next attempt's later deadline moved the timer
// past an earlier one, which then fired late. Real time, without waiting
// for any deadline but the one already past: the hour-long ones are
// checked against the timer's setting.
func TestDeadlineWatchEndAtEpoch(t *testing.T) {
	t.Parallel()
	var w deadlineWatch
	now := time.Now()
	first := watchBody()
	w.arm(first, nil, now, now.Add(time.Hour))
	atEpoch := watchBody()
	w.arm(atEpoch, nil, now.Add(-time.Second), now) // ends at the epoch: passed
	later := watchBody()
	w.arm(later, nil, now, now.Add(2*time.Hour))
	w.mu.Lock()
	armed := w.armed
	w.mu.Unlock()
	if armed > first.end {
		t.Fatalf("the timer is set at %v, past the earliest deadline, %v (next %v)", time.Duration(armed), time.Duration(first.end), time.Duration(w.next.Load()))
	}
	select {
	case <-atEpoch.own.Done():
	case <-time.After(time.Minute):
		t.Fatalf("a deadline ending at the watch's epoch, already passed, never fired (next %v)", time.Duration(w.next.Load()))
	}
	if !errors.Is(atEpoch.own.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want DeadlineExceeded", atEpoch.own.Err())
	}
	// The sweep that fired it set next to the earliest of the rest, and
	// the timer to it, before it fired the deadline: both are settled
	// now (no other deadline is due for an hour). The timer may be unset
	// (0) only because this test held w.mu, above, when the sweep tried
	// to set it (sync takes the lock only when it is free, as no other
	// holder but sync and sweep, which check next once more, takes it):
	// waiting for it to be set would then wait forever.
	w.mu.Lock()
	armed = w.armed
	w.mu.Unlock()
	if next := w.next.Load(); next != first.end {
		t.Errorf("after the sweep, next = %v, want the earliest deadline left, %v", time.Duration(next), time.Duration(first.end))
	}
	if armed != 0 && armed != first.end {
		t.Errorf("after the sweep, the timer is set at %v, want the earliest deadline left, %v", time.Duration(armed), time.Duration(first.end))
	}
	first.keep()
	later.keep()
}
