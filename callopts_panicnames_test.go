package resilient

import (
	"context"
	"fmt"
	"testing"
)

// TestWithCallOptionsPanicNamesEachOnce checks that the panic of
// WithCallOptions on options that apply per Transport names each of them
// once, in the order given, however often it was given (twice, or inside
// Options beside itself), with the verb agreeing with their number.
func TestWithCallOptionsPanicNamesEachOnce(t *testing.T) {
	obs := func(Attempt) {}
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"one", []Option{WithObserver(obs)},
			"resilient: WithCallOptions: WithObserver applies per Transport, not per call"},
		{"twice", []Option{WithObserver(obs), WithObserver(obs)},
			"resilient: WithCallOptions: WithObserver applies per Transport, not per call"},
		{"bundled", []Option{Options(WithObserver(obs), WithoutBreaker()), WithMaxRetries(1), WithObserver(obs), WithoutBreaker()},
			"resilient: WithCallOptions: WithObserver, WithoutBreaker apply per Transport, not per call"},
		{"three", []Option{WithoutBreaker(), WithObserver(obs), WithoutRetryBudget(), WithObserver(obs)},
			"resilient: WithCallOptions: WithoutBreaker, WithObserver, WithoutRetryBudget apply per Transport, not per call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != tc.want {
					t.Errorf("WithCallOptions panic = %q, want %q", got, tc.want)
				}
			}()
			WithCallOptions(context.Background(), tc.opts...)
		})
	}
}
