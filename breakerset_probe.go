package resilient

import (
	"sync/atomic"
)

// This file holds the probes a half-open breaker lets through, and their
// release when they go unanswered.

// probe is an attempt a half-open breaker let through. Its slot is freed
// once: by the attempt's outcome, or, when it has gone unanswered for
// ProbeTimeout, by breakerSet.releaseStaleProbes, which reports it as not
// counted. An outcome that comes after that counts only when it is a
// success (see breakerTransport.report).
type probe struct {
	done     func(error)
	start    int64 // breakerSet.now() when it was let through
	reported atomic.Bool
}

// addProbe records a probe e let through while half-open, done being its
// report function.
func (s *breakerSet) addProbe(e *breakerEntry, done func(error)) *probe {
	pr := &probe{done: done, start: s.now()}
	m := e.m.Load()
	m.pmu.Lock()
	m.probes = append(m.probes, pr)
	m.pmu.Unlock()
	return pr
}

// dropProbe forgets a probe whose outcome was reported.
func (s *breakerSet) dropProbe(e *breakerEntry, pr *probe) {
	m := e.m.Load()
	m.pmu.Lock()
	defer m.pmu.Unlock()
	for i, p := range m.probes {
		if p == pr {
			m.probes = append(m.probes[:i], m.probes[i+1:]...)
			return
		}
	}
}

// releaseStaleProbes releases the probes of e that have gone unanswered for
// ProbeTimeout or longer: their slots are freed (reported as not counted)
// and their own outcomes, when they come, count only when they are
// successes (see breakerTransport.report). It reports whether
// it released any, in which case a refused attempt may ask again. It runs
// on the goroutine of an attempt that a half-open breaker refused: no timer
// or goroutine watches the probes.
func (s *breakerSet) releaseStaleProbes(e *breakerEntry) bool {
	stale := s.now() - int64(s.probeTimeout)
	var released []*probe
	m := e.m.Load()
	m.pmu.Lock()
	kept := m.probes[:0]
	for _, pr := range m.probes {
		if pr.start <= stale {
			released = append(released, pr)
		} else {
			kept = append(kept, pr)
		}
	}
	clear(m.probes[len(kept):])
	m.probes = kept
	m.pmu.Unlock()
	freed := false
	for _, pr := range released {
		if pr.reported.CompareAndSwap(false, true) {
			pr.done(errBreakerExcluded)
			freed = true
		}
	}
	return freed
}
