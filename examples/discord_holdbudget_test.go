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

// TestDiscordGlobalHoldWithinTheCallsBudget: a call the bot's global pause
// holds stays within the budget its caller set for it
// (resilient.WithCallOptions WithMaxElapsed), as with resilient's own rate
// limiter: a pause of 30 s refuses, unsent and at once, a call given 10 s,
// and a call given 40 s whose API call then hangs fails after 40 s in all,
// the 30 s it was held counted. Until 2026-12-06 the first was held 30 s
// and then sent with its 10 s whole, and the second failed after 70 s.
func TestDiscordGlobalHoldWithinTheCallsBudget(t *testing.T) {
	for _, tc := range []struct {
		budget time.Duration
		sent   int           // the requests the API gets
		took   time.Duration // when the call fails
	}{
		{10 * time.Second, 0, 0},
		{40 * time.Second, 1, 40 * time.Second},
	} {
		t.Run(tc.budget.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sent := 0
				hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					sent++
					<-r.Context().Done()
					return nil, r.Context().Err()
				})
				g := &discordGlobal{next: resilient.New(hang, resilient.WithoutRateLimit())}
				paused := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
				paused.Header.Set("X-RateLimit-Global", "true")
				paused.Header.Set("Retry-After", "30")
				g.learn(paused, nil, nil, resilient.Throttled)
				ctx := resilient.WithCallOptions(context.Background(), resilient.WithMaxElapsed(tc.budget))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://discord.com/api/v9/channels/1/messages", nil)
				start := time.Now()
				resp, err := g.RoundTrip(req)
				took := time.Since(start)
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while the API hangs, want an error")
				}
				if took != tc.took || sent != tc.sent || tc.sent == 0 && !errors.Is(err, resilient.ErrRateLimited) {
					t.Errorf("a call given %v, held by a pause of 30s: %v after %v, %d sent; want it to fail after %v, %d sent (unsent: resilient.ErrRateLimited)", tc.budget, err, took, sent, tc.took, tc.sent)
				}
			})
		})
	}
}
