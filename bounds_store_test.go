package resilient_test

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
)

// This file holds the QuotaStore of TestBoundsProperty
// (bounds_property_test.go): a fleet whose backend is slow.

// boundsStore is a QuotaStore whose partitions share the pause, and whose
// tokens come as mode says: "pause", at once; "paced", each after delay
// (the fleet's pace, which may be slower than any bound of the call);
// "dry", none for the first dry of the case (a backend that does not
// answer: the caller asks again after delay), then at once. Once healthy,
// every token comes at once.
type boundsStore struct {
	mode       string
	delay, dry time.Duration
	start      time.Time
	healthy    atomic.Bool

	mu    sync.Mutex
	parts map[string]*boundsPart
}

type boundsPart struct {
	s     *boundsStore
	until atomic.Int64 // UnixNano; 0 for none
}

func newBoundsStore(c *boundsCase) *boundsStore {
	if c.Store == "" {
		return nil
	}
	return &boundsStore{mode: c.Store, delay: c.StoreDelay, dry: c.StoreDry, start: time.Now(), parts: map[string]*boundsPart{}}
}

func (s *boundsStore) Partition(name string) resilient.QuotaPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[name]
	if p == nil {
		p = &boundsPart{s: s}
		s.parts[name] = p
	}
	return p
}

func (p *boundsPart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	s := p.s
	switch {
	case s.healthy.Load():
	case s.mode == "paced":
		return s.delay, true, nil
	case s.mode == "dry" && now.Before(s.start.Add(s.dry)):
		return s.delay, false, nil
	}
	return 0, true, nil
}

func (p *boundsPart) PauseUntil() time.Time {
	if u := p.until.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}

func (p *boundsPart) Pause(until time.Time) {
	for {
		old := p.until.Load()
		if until.UnixNano() <= old || p.until.CompareAndSwap(old, until.UnixNano()) {
			return
		}
	}
}

func (p *boundsPart) Learn(resilient.RateLimitInfo, time.Duration) {}
