package resilient

import (
	"context"
	"testing"
	"time"
)

// TestCallMaxElapsed: CallMaxElapsed reports the budget a call made with a
// context gets: the Transport's, as the call's options raise or lower it,
// less what WithMaxElapsedSpent counted, a nanosecond when that left
// nothing, zero for none.
func TestCallMaxElapsed(t *testing.T) {
	bg := context.Background()
	call := func(opts ...Option) context.Context { return WithCallOptions(bg, opts...) }
	for _, tc := range []struct {
		name string
		t    *Transport
		ctx  context.Context
		want time.Duration
	}{
		{"the default", New(nil), bg, DefaultMaxElapsed},
		{"the zero Transport", &Transport{}, bg, DefaultMaxElapsed},
		{"the Transport's", New(nil, WithMaxElapsed(time.Minute)), bg, time.Minute},
		{"none", New(nil, WithMaxElapsed(0)), bg, 0},
		{"lowered for the call", New(nil), call(WithMaxElapsed(2 * time.Minute)), 2 * time.Minute},
		{"raised for the call", New(nil), call(WithMaxElapsed(time.Hour)), time.Hour},
		{"none for the call", New(nil), call(WithMaxElapsed(0)), 0},
		{"set for the call without the Transport's", New(nil, WithMaxElapsed(0)), call(WithMaxElapsed(time.Minute)), time.Minute},
		{"spent in part", New(nil), call(WithMaxElapsedSpent(time.Minute)), 4 * time.Minute},
		{"spent of the call's", New(nil), call(WithMaxElapsed(time.Hour), WithMaxElapsedSpent(time.Minute)), 59 * time.Minute},
		{"spent twice", New(nil), WithCallOptions(call(WithMaxElapsedSpent(time.Minute)), WithMaxElapsedSpent(time.Minute)), 3 * time.Minute},
		{"spent whole", New(nil), call(WithMaxElapsedSpent(6 * time.Minute)), time.Nanosecond},
		{"spent without a budget", New(nil, WithMaxElapsed(0)), call(WithMaxElapsedSpent(time.Minute)), 0},
	} {
		if got := tc.t.CallMaxElapsed(tc.ctx); got != tc.want {
			t.Errorf("%s: CallMaxElapsed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCallMaxElapsedNilContextPanics: a nil context panics with a message
// that names CallMaxElapsed.
func TestCallMaxElapsedNilContextPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "resilient: CallMaxElapsed: nil Context" {
			t.Errorf("CallMaxElapsed(nil) panicked with %v, want the message naming CallMaxElapsed", r)
		}
	}()
	var nilCtx context.Context
	New(nil).CallMaxElapsed(nilCtx)
}
