package resilient

import (
	"strings"
	"testing"
	"time"
)

// TestMaxElapsedSpentGivenToNewPanics: WithMaxElapsedSpent counts time a
// call spent before it reached the Transport; given to New, where no call
// spent anything, it is a mistake, and New panics naming it and where it
// belongs, whatever d. Until 2026-12-06 New took a minute off the
// Transport's budget for every call, and panicked on a d of the whole
// budget naming WithMaxElapsed, which the caller did not give, as a units
// mistake.
func TestMaxElapsedSpentGivenToNewPanics(t *testing.T) {
	for _, d := range []time.Duration{0, time.Minute, DefaultMaxElapsed} {
		p := mustPanic(t, "New(nil, WithMaxElapsedSpent("+d.String()+")) accepted a per-call option", func() { New(nil, WithMaxElapsedSpent(d)) })
		if msg, _ := p.(string); !strings.Contains(msg, "WithMaxElapsedSpent") || !strings.Contains(msg, "WithCallOptions") {
			t.Errorf("New(nil, WithMaxElapsedSpent(%v)) panicked with %v, want a message naming WithMaxElapsedSpent and WithCallOptions", d, p)
		}
	}
}
