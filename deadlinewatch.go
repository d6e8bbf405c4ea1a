package resilient

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// This file holds the single timer that fires the deadlines of the attempts
// of one chain.

// watchSlots is the number of attempts a deadlineWatch follows at once;
// beyond it, an attempt gets a timer of its own.
const watchSlots = 512

// deadlineWatch fires the deadlines of the attempts of one chain with a
// single timer, so that an attempt arms no runtime timer of its own (arming
// one, on an idle processor, wakes the network poller: a system call per
// attempt). An attempt takes a free slot (one compare-and-swap at a random
// place, so that goroutines on different cores rarely touch the same
// cache line) and gives it back when its deadline no longer matters. The
// timer is set to the earliest deadline it knows of, and reset only when an
// attempt's deadline comes before it: with deadlines of the same length
// (the call's budget, an attempt timeout), seldom. When it fires, it fires
// the deadlines that are due and sets itself to the earliest of the rest.
//
// Inside a testing/synctest bubble, whose clock is fake (its time.Now has
// no monotonic reading), and when every slot is taken, an attempt gets a
// timer of its own instead.
type deadlineWatch struct {
	slots [watchSlots]atomic.Pointer[deadlineBody]
	next  atomic.Int64              // the earliest deadline, as ns since epoch; 0: none
	epoch atomic.Pointer[time.Time] // the first attempt's start

	mu    sync.Mutex // serializes setting the timer and its sweeps
	armed int64      // what the timer is set for; 0: not set
	timer *time.Timer
}

// arm sees to it that db's deadline end fires, now being the start of
// attempt st (nil for none): the current time, or earlier by what the
// attempt waited below the rate limiter (a slot of WithMaxInFlight). A
// timer of the attempt's own is set from the clock, not from now, so that
// the wait does not push the deadline back. st draws the place where the
// search for a free slot starts. It takes no lock: it may try to, to set
// the timer, but never waits for it.
func (w *deadlineWatch) arm(db *deadlineBody, st *attemptState, now, end time.Time) {
	db.slot = -1
	epoch := w.epoch.Load()
	if epoch == nil {
		first := now // the first attempt's start
		w.epoch.CompareAndSwap(nil, &first)
		epoch = w.epoch.Load()
	}
	db.watch, db.end = w, int64(end.Sub(*epoch)) // see deadlineBody.deadline
	if db.end == 0 {
		// An end at the epoch (an attempt that started before it, whose
		// end passed) is not next's "none": it is 1ns earlier, as past.
		db.end = -1
	}
	if now == now.Round(0) {
		// No monotonic reading: a synctest bubble's fake clock.
		db.timer = time.AfterFunc(time.Until(end), db.fire)
		return
	}
	i := st.random()
	for probe := range uint32(8) {
		j := (i + probe) % watchSlots
		if w.slots[j].Load() == nil && w.slots[j].CompareAndSwap(nil, db) {
			db.slot = int32(j)
			break
		}
	}
	if db.slot < 0 {
		db.timer = time.AfterFunc(time.Until(end), db.fire)
		return
	}
	// The slot is taken before next is read: a sweep that clears next
	// after this read scans the slots after it, and sees this one; one
	// that cleared it before makes this attempt lower it.
	if w.lower(db.end) {
		w.sync()
	}
}

// lower makes next at most end, and reports whether it changed it.
func (w *deadlineWatch) lower(end int64) bool {
	for {
		n := w.next.Load()
		if n != 0 && n <= end {
			return false
		}
		if w.next.CompareAndSwap(n, end) {
			return true
		}
	}
}

// sync sets the timer to next, unless another goroutine holds the lock: that
// one then does it before it returns, as this one does, by checking next
// once more after unlocking.
func (w *deadlineWatch) sync() {
	for w.mu.TryLock() {
		target := w.next.Load()
		if target != 0 && target != w.armed {
			d := time.Duration(target - int64(time.Since(*w.epoch.Load())))
			if w.timer == nil {
				// The timer holds the watch weakly: set for the call's
				// budget (minutes), it would otherwise keep the chain and
				// its base alive that long after their last call (a
				// Transport made per request).
				// Once the watch is garbage, its timer is stopped: the
				// runtime's heap of timers holds it no longer either.
				wp := weak.Make(w)
				w.timer = time.AfterFunc(d, func() {
					if w := wp.Value(); w != nil {
						w.sweep()
					}
				})
				runtime.AddCleanup(w, stopTimer, w.timer)
			} else {
				w.timer.Reset(d)
			}
			w.armed = target
		}
		w.mu.Unlock()
		if w.next.Load() == target {
			return
		}
	}
}

// stopTimer stops t; it is the cleanup of a deadlineWatch's timer.
func stopTimer(t *time.Timer) { t.Stop() }

// sweep runs when the timer fires: it fires the deadlines that are due,
// and sets the timer to the earliest of the others.
func (w *deadlineWatch) sweep() {
	for !w.mu.TryLock() {
		runtime.Gosched() // an attempt is setting the timer
	}
	w.armed = 0
	w.next.Store(0) // before the scan: see arm
	at := int64(time.Since(*w.epoch.Load()))
	var due []*deadlineBody
	var earliest int64
	for i := range w.slots {
		db := w.slots[i].Load()
		switch {
		case db == nil:
		case db.end <= at:
			if w.slots[i].CompareAndSwap(db, nil) {
				due = append(due, db)
			}
		case earliest == 0 || db.end < earliest:
			earliest = db.end
		}
	}
	if earliest != 0 {
		w.lower(earliest)
	}
	w.mu.Unlock()
	w.sync()
	for _, db := range due {
		db.fire()
	}
}
