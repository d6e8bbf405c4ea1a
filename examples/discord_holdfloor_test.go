package examples

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestDiscordGlobalHoldToTheBudgetsEndIsRefused: a call the bot's global
// pause of 30 s would hold to less than 1ms before the end of its budget
// (resilient.WithCallOptions WithMaxElapsed) or of its context's deadline
// is refused at once, unsent, with resilient.ErrRateLimited, as
// resilient's own limiter refuses a first attempt held so
// (TestFirstAttemptHeldToItsDeadlineIsNotSent): held, it would fail after
// the 30 s with its budget or its deadline spent, and nothing sent. Until
// 2026-12-07 a pause that ended at the budget's end, or 0.5ms before it,
// held the call 30 s.
func TestDiscordGlobalHoldToTheBudgetsEndIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		budget   time.Duration // for the call; 0 for the Transport's
		deadline time.Duration // the context's; 0 for none
	}{
		{"budget ends with the pause", 30 * time.Second, 0},
		{"budget ends 0.5ms after the pause", 30*time.Second + 500*time.Microsecond, 0},
		{"deadline ends with the pause", 0, 30 * time.Second},
		{"deadline ends 0.5ms after the pause", 0, 30*time.Second + 500*time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sent := 0
				ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					sent++
					return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
				})
				g := &discordGlobal{next: resilient.New(ok, resilient.WithoutRateLimit())}
				paused := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
				paused.Header.Set("X-RateLimit-Global", "true")
				paused.Header.Set("Retry-After", "30")
				g.learn(paused, nil, nil, resilient.Throttled)
				ctx := context.Background()
				if tc.budget > 0 {
					ctx = resilient.WithCallOptions(ctx, resilient.WithMaxElapsed(tc.budget))
				}
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://discord.com/api/v9/channels/1/messages", nil)
				start := time.Now()
				resp, err := g.RoundTrip(req)
				took := time.Since(start)
				if err == nil {
					resp.Body.Close()
				}
				if took != 0 || sent != 0 || !errors.Is(err, resilient.ErrRateLimited) {
					t.Errorf("a call held by a pause of 30s to less than 1ms before its end: %v after %v, %d sent; want it to fail after 0s, 0 sent (resilient.ErrRateLimited)", err, took, sent)
				}
			})
		})
	}
}
