package redisquota

import (
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestApplyHostileWindow checks that a quota message from the channel
// whose window is longer than resilient.MaxBelievedReset is not believed:
// the member would pace by it when Redis does not answer.
func TestApplyHostileWindow(t *testing.T) {
	s := &Store{parts: map[string]*part{}, byID: map[string]*part{}}
	p := newPart(s, "x", "id1", s.totalField("g", 1))
	s.parts["x"], s.byID["id1"] = p, p
	now := time.Now()
	s.apply("q id1 60 60000000", now)
	for _, w := range []time.Duration{resilient.MaxBelievedReset + time.Second, 24 * time.Hour, 10 * 365 * 24 * time.Hour} {
		s.apply("q id1 60 "+strconv.FormatInt(w.Microseconds(), 10), now)
		if got := time.Duration(p.window.Load()); got != time.Minute {
			t.Errorf("after a quota message with a window of %v, the window is %v, want 1m", w, got)
		}
	}
}
