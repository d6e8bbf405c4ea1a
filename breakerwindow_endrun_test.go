package resilient

import (
	"testing"
	"time"
)

// TestClosedWindowEndRun: a success ends the run of failures it read, not
// the failures counted after its reading, which came after it: they begin
// the next run. Storing zero erased them. A run that another success
// ended meanwhile is left as it is.
func TestClosedWindowEndRun(t *testing.T) {
	var w closedWindow
	w.reset(0, int64(time.Second))
	for range 3 {
		w.failure(12, 12)
	}
	read := w.consecutive.Load() // a success reads the run of 3...
	w.failure(12, 12)            // ...a failure comes...
	w.endRun(read)               // ...and the success ends the run it read
	if _, _, c := w.counts(12); c != 1 {
		t.Errorf("run after a success that read 3 failures, and a failure after its reading: %d, want 1", c)
	}
	other := w.consecutive.Load()
	w.endRun(other) // another success ends that run of 1
	w.failure(12, 12)
	w.endRun(read) // a success that read the first run ends nothing more
	if _, _, c := w.counts(12); c != 1 {
		t.Errorf("run after a late success of an ended run: %d, want 1", c)
	}
}
