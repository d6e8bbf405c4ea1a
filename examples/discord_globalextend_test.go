package examples

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/resilienthttp/resilient"
)

// discordExtendedGlobalAPI is a fake of Discord's REST API whose bot
// spends its global limit twice: a message to channel 1 draws a global 429
// with a Retry-After of 2 s, and a read of channel 3, answered after 1 s,
// draws another, which moves the end of the pause to 2 s after it. Every
// other request during the pause is answered with the global 429 too, as
// Discord counts it against the bot; the rest are answered 200.
type discordExtendedGlobalAPI struct {
	mu      sync.Mutex
	until   time.Time // the end of the global pause
	limited int       // global 429s sent
}

func (d *discordExtendedGlobalAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	spends := r.Method == http.MethodPost || strings.HasSuffix(r.URL.Path, "/channels/3/messages")
	if strings.HasSuffix(r.URL.Path, "/channels/3/messages") {
		time.Sleep(time.Second) // answered once the pause the message drew is on
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if spends {
		d.until = now.Add(2 * time.Second)
	}
	if discordGlobalPaused(w, now, d.until) {
		d.limited++
		return
	}
	_, _ = w.Write([]byte(`[]`))
}

// TestDiscordGlobalLimitExtendedHoldsTheWaitingCall: a call held by the
// bot's global pause is held until the pause's end as it is when the hold
// ends, not as it was when the hold began: a global 429 drawn during the
// hold (by a call already inside resilient) that moves the end later
// holds it until that later end. Until 2026-12-06 the held call was sent
// at the first end, into the pause, and drew a global 429 of its own: one
// more invalid request of those Discord counts towards banning a client.
func TestDiscordGlobalLimitExtendedHoldsTheWaitingCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordExtendedGlobalAPI{}
		s := discordGlobalSession(t, api)
		once := discordgo.WithContext(resilient.WithCallOptions(context.Background(), resilient.WithMaxRetries(0)))
		start := time.Now()
		slow := make(chan error, 1)
		go func() {
			_, err := s.ChannelMessages("3", 50, "", "", "", once) // inside resilient before any pause
			slow <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if _, err := s.ChannelMessageSend("1", "hello", once); err == nil {
			t.Fatal("ChannelMessageSend succeeded, want the global 429 it drew")
		}
		time.Sleep(400 * time.Millisecond)
		_, err := s.ChannelMessages("2", 50, "", "", "") // held until 2.1 s, then until 3 s
		read := time.Since(start)
		if err != nil {
			t.Errorf("ChannelMessages of channel 2: %v, want its messages after the pause", err)
		}
		if err := <-slow; err == nil {
			t.Error("ChannelMessages of channel 3 succeeded, want the global 429 it drew")
		}
		if want := 3 * time.Second; api.limited != 2 || read < want {
			t.Errorf("global 429s = %d, the held call answered after %v; want 2, after %v", api.limited, read, want)
		}
	})
}
