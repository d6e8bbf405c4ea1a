package examples

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/resilienthttp/resilient"
)

// TestDiscordGlobalResetAfterHoldsNoCallPastBounds: a 429 of the bot's
// global limit that carries an X-RateLimit-Reset-After beside its
// Retry-After (which discordGlobal.learn reads too) holds a later call of
// another route within the recipe's bounds only: a pause past
// resilient.DefaultMaxRetryAfter, or past the call's deadline, refuses it
// at once, unsent, with an error wrapping resilient.ErrRateLimited, as
// the recipe says. discordgo's own limiter, which reads that header of
// the 429 the recipe returns, would otherwise hold every route for the
// whole pause before the call reached the recipe's transport, in a
// time.Sleep deaf to the call's context and to any bound.
func TestDiscordGlobalResetAfterHoldsNoCallPastBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pause    time.Duration
		deadline time.Duration // of the later call; 0 for none
	}{
		{"past the Retry-After cap", 10 * time.Minute, 0},
		{"past the deadline", 30 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var until time.Time
				sent := 0
				api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					defer mu.Unlock()
					sent++
					now := time.Now()
					if until.IsZero() && r.Method == http.MethodPost {
						until = now.Add(tc.pause)
					}
					if now.Before(until) {
						w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(until.Sub(now).Seconds(), 'f', 3, 64))
					}
					if discordGlobalPaused(w, now, until) {
						return
					}
					_, _ = w.Write([]byte(`[]`))
				})
				s := discordGlobalSession(t, api)
				once := discordgo.WithContext(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)))
				if _, err := s.ChannelMessageSend("1", "hello", once); err == nil {
					t.Fatal("ChannelMessageSend succeeded, want the global 429 it drew")
				}
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				mu.Lock()
				before := sent
				mu.Unlock()
				start := time.Now()
				_, err := s.ChannelMessages("2", 10, "", "", "", discordgo.WithContext(ctx))
				mu.Lock()
				after := sent - before
				mu.Unlock()
				if !errors.Is(err, resilient.ErrRateLimited) || after != 0 || time.Since(start) != 0 {
					t.Errorf("the other route's call: %v, %d requests sent, after %v; want resilient.ErrRateLimited at once, unsent", err, after, time.Since(start))
				}
			})
		})
	}
}
