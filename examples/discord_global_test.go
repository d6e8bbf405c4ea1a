package examples

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/resilienthttp/resilient"
)

// discordGlobalAPI is a fake of Discord's REST API whose bot spends its
// global limit on the first message it posts: that POST is answered with
// Discord's global 429 (X-RateLimit-Global: true, and a Retry-After of
// pause), and every request of any route during the pause with it too, as
// Discord counts it against the bot. Other requests are answered 200.
type discordGlobalAPI struct {
	pause time.Duration

	mu      sync.Mutex
	until   time.Time // the end of the global pause
	limited int       // global 429s sent
	sent    []time.Time
}

func (d *discordGlobalAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.sent = append(d.sent, now)
	if d.until.IsZero() && r.Method == http.MethodPost {
		d.until = now.Add(d.pause)
	}
	if discordGlobalPaused(w, now, d.until) {
		d.limited++
		return
	}
	if r.Method == http.MethodPost {
		_, _ = w.Write([]byte(`{"id":"1","channel_id":"1","content":"hello"}`))
		return
	}
	_, _ = w.Write([]byte(`[]`))
}

// TestDiscordGlobalLimitHoldsEveryRoute: a 429 of the bot's global limit,
// drawn by a message to one channel, holds a call to another route (a
// read of another channel's messages) until its Retry-After has passed:
// that call gets its answer with no 429 of its own, and the message is
// posted after the pause. Until 2026-12-06 the recipe, with resilient's
// limiter off and discordgo's blind to Discord's global 429 (it carries no
// X-RateLimit-Reset-After), sent the other call during the pause, which
// drew a second global 429: one more invalid request of those Discord
// counts towards banning a client.
func TestDiscordGlobalLimitHoldsEveryRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordGlobalAPI{pause: 2 * time.Second}
		s := discordGlobalSession(t, api)
		start := time.Now()
		posted := make(chan error, 1)
		go func() {
			_, err := s.ChannelMessageSend("1", "hello")
			posted <- err
		}()
		time.Sleep(500 * time.Millisecond) // the message drew the global 429
		if _, err := s.ChannelMessages("2", 50, "", "", ""); err != nil {
			t.Errorf("ChannelMessages of another channel: %v, want its messages after the pause", err)
		}
		read := time.Since(start)
		if err := <-posted; err != nil {
			t.Errorf("ChannelMessageSend: %v, want the message posted after the pause", err)
		}
		if api.limited != 1 || read < api.pause {
			t.Errorf("global 429s = %d, the other route's call answered after %v; want 1, after %v", api.limited, read, api.pause)
		}
	})
}

// TestDiscordGlobalLimitRefusesPastBounds: a call that the bot's global
// pause would hold past its context's deadline, or longer than
// resilient.DefaultMaxRetryAfter, fails at once, unsent, with an error
// wrapping resilient.ErrRateLimited; a Retry-After past
// resilient.MaxBelievedReset holds nothing.
func TestDiscordGlobalLimitRefusesPastBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pause    time.Duration
		deadline time.Duration // of the other route's call; 0 for none
		held     bool          // whether that call is refused
	}{
		{"past the deadline", 10 * time.Second, 5 * time.Second, true},
		{"past the Retry-After cap", 2 * time.Minute, 0, true},
		{"past MaxBelievedReset", 2 * resilient.MaxBelievedReset, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := &discordGlobalAPI{pause: tc.pause}
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
				before, start := len(api.sent), time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://discord.com/api/v9/channels/2/messages", nil)
				resp, err := s.Client.Do(req)
				if resp != nil {
					resp.Body.Close()
				}
				sent := len(api.sent) - before
				if tc.held {
					if !errors.Is(err, resilient.ErrRateLimited) || sent != 0 || time.Since(start) != 0 {
						t.Errorf("the other route's call: %v, %d requests sent, after %v; want resilient.ErrRateLimited at once, unsent", err, sent, time.Since(start))
					}
					return
				}
				if sent == 0 {
					t.Errorf("the other route's call: %v, unsent; want it sent (a pause past MaxBelievedReset is not believed)", err)
				}
			})
		})
	}
}
