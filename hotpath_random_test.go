package resilient

import (
	"net/http"
	"testing"
	"time"
)

// TestAttemptRandom checks the generator of an attempt's state: seeded once
// and kept by reset, each state drawing its own sequence, and spread evenly
// over the choices the layers make with it (a slot of the deadline watch,
// one quiet success in quietSample).
func TestAttemptRandom(t *testing.T) {
	var a, b attemptState
	a.random()
	seed := a.seed
	if seed == 0 {
		t.Fatal("random left the state unseeded")
	}
	a.reset()
	if a.seed != seed {
		t.Errorf("reset: seed = %#x, want %#x", a.seed, seed)
	}
	same := 0
	for range 64 {
		if a.random() == b.random() {
			same++
		}
	}
	if same > 1 {
		t.Errorf("two states drew %d equal numbers of 64", same)
	}
	const n = 64 * watchSlots
	var slots [watchSlots]int
	for range n {
		slots[a.random()%watchSlots]++
	}
	for i, c := range slots {
		if c < n/watchSlots/4 || c > n/watchSlots*4 {
			t.Fatalf("slot %d drawn %d times of %d, want about %d", i, c, n, n/watchSlots)
		}
	}
}

// TestHeaderWatchQuietState checks that a quiet Transport reads about one
// success in quietSample when the attempt's state draws them.
func TestHeaderWatchQuietState(t *testing.T) {
	var w headerWatch
	var st attemptState
	reads := 0
	count := func(http.Header, time.Time) (RateLimitInfo, bool) {
		reads++
		return RateLimitInfo{}, false
	}
	plain := http.Header{"Content-Type": {"application/json"}}
	read := func() {
		now := lazyNow{t: rlNow}
		w.read(&http.Response{StatusCode: 200, Header: plain}, &now, []RateLimitParser{count}, &st)
	}
	for range quietAfter {
		read()
	}
	reads = 0
	const n = 8000
	for range n {
		read()
	}
	if lo, hi := n/quietSample/2, n/quietSample*2; reads < lo || reads > hi {
		t.Errorf("quiet: read %d of %d successes, want about %d", reads, n, n/quietSample)
	}
}
