package examples

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// discordGlobalStreamAPI is a fake of Discord's REST API whose bot keeps
// spending its global limit: every message posted draws a global 429 and
// moves the end of the pause to pause after it, and every other request
// during the pause is answered with the global 429 too. Reads are answered
// 200 outside the pause; sent counts the reads of channel 2.
type discordGlobalStreamAPI struct {
	pause time.Duration

	mu    sync.Mutex
	until time.Time // the end of the global pause
	sent  int       // reads of channel 2
}

func (d *discordGlobalStreamAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if strings.HasSuffix(r.URL.Path, "/channels/2/messages") {
		d.sent++
	}
	if r.Method == http.MethodPost {
		d.until = now.Add(d.pause)
	}
	if discordGlobalPaused(w, now, d.until) {
		return
	}
	_, _ = w.Write([]byte(`[]`))
}

// TestDiscordGlobalLimitHoldsACallAMinuteInAll: a call held by the bot's
// global pause, whose end global 429s drawn by calls already inside
// resilient keep moving later (each by less than a minute, before it
// comes), is held resilient.DefaultMaxRetryAfter at most in all, counted
// from its first hold, and then fails, unsent, with an error wrapping
// resilient.ErrRateLimited, as a call the pause would hold longer than
// that fails at once. Until 2026-12-06 each hold was capped on its own:
// the call waited out every move of the pause, for minutes (here 254 s,
// up to the client's Timeout of 5 minutes).
func TestDiscordGlobalLimitHoldsACallAMinuteInAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordGlobalStreamAPI{pause: 45 * time.Second}
		s := discordGlobalSession(t, api)
		inside := s.Client.Transport.(interface{ Unwrap() http.RoundTripper }).Unwrap() // calls already inside resilient
		once := resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0))
		streamed := make(chan struct{})
		go func() {
			defer close(streamed)
			for i := range 8 { // a global 429 every 30 s, from 0 s to 210 s: the pause ends at 255 s
				req, _ := http.NewRequestWithContext(once, http.MethodPost, "https://discord.com/api/v9/channels/1/messages", strings.NewReader(`{"content":"hello"}`))
				if resp, err := inside.RoundTrip(req); err == nil {
					resp.Body.Close()
				}
				if i < 7 {
					time.Sleep(30 * time.Second)
				}
			}
		}()
		time.Sleep(time.Second) // the first global 429 is in
		start := time.Now()
		_, err := s.ChannelMessages("2", 50, "", "", "")
		held := time.Since(start)
		<-streamed
		if !errors.Is(err, resilient.ErrRateLimited) || held > resilient.DefaultMaxRetryAfter || api.sent != 0 {
			t.Errorf("the held call: %v after %v, %d requests sent; want resilient.ErrRateLimited within %v, unsent", err, held, api.sent, resilient.DefaultMaxRetryAfter)
		}
	})
}
