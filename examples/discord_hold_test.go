package examples

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// closeCountingBody is a request body that counts its Close calls.
type closeCountingBody struct {
	*strings.Reader
	closed int
}

func (b *closeCountingBody) Close() error { b.closed++; return nil }

// discordHeld returns a discordGlobal over a base that counts the
// requests it is sent, paused by a global 429 whose Retry-After is pause.
func discordHeld(pause string) (g *discordGlobal, sent *int) {
	sent = new(int)
	g = &discordGlobal{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		*sent++
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
	resp.Header.Set("X-RateLimit-Global", "true")
	resp.Header.Set("Retry-After", pause)
	g.learn(resp, nil, nil, resilient.Throttled)
	return g, sent
}

// TestDiscordGlobalHoldClosesTheRefusedBody: a message the bot's global
// pause refuses, unsent (the pause past resilient.DefaultMaxRetryAfter),
// has its body closed, as a RoundTripper must on every path, the base
// transport never called.
func TestDiscordGlobalHoldClosesTheRefusedBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, sent := discordHeld("120")
		body := &closeCountingBody{Reader: strings.NewReader(`{"content":"hello"}`)}
		req, _ := http.NewRequest(http.MethodPost, "https://discord.com/api/v9/channels/1/messages", body)
		_, err := g.RoundTrip(req)
		if !errors.Is(err, resilient.ErrRateLimited) || *sent != 0 || body.closed == 0 {
			t.Errorf("RoundTrip: %v, %d sent, body closed %d times; want resilient.ErrRateLimited, unsent, the body closed", err, *sent, body.closed)
		}
	})
}

// TestDiscordGlobalHoldEndsWithItsContext: a call held by the bot's global
// pause returns, unsent, as soon as its context is canceled, with the
// context's cause, not when the pause ends.
func TestDiscordGlobalHoldEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, sent := discordHeld("10")
		cause := errors.New("the caller gave up")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(cause) })
		body := &closeCountingBody{Reader: strings.NewReader(`{"content":"hello"}`)}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://discord.com/api/v9/channels/1/messages", body)
		start := time.Now()
		_, err := g.RoundTrip(req)
		if d := time.Since(start); !errors.Is(err, cause) || d != time.Second || *sent != 0 || body.closed == 0 {
			t.Errorf("RoundTrip: %v after %v, %d sent, body closed %d times; want the cause after 1s, unsent, the body closed", err, d, *sent, body.closed)
		}
	})
}

// TestDiscordGlobalLearnReadsWhatTheDocSays: learn starts the global pause
// from a 429 of the global limit only, from its Retry-After or, without
// one, its X-RateLimit-Reset-After, and a later global 429 asking for a
// shorter wait does not end the pause sooner.
func TestDiscordGlobalLearnReadsWhatTheDocSays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			status int
			header http.Header
			want   time.Duration // the pause started; 0 for none
		}{
			{"RetryAfter", http.StatusTooManyRequests, http.Header{"X-Ratelimit-Global": {"true"}, "Retry-After": {"2"}}, 2 * time.Second},
			{"ResetAfterAlone", http.StatusTooManyRequests, http.Header{"X-Ratelimit-Global": {"true"}, "X-Ratelimit-Reset-After": {"3.5"}}, 3500 * time.Millisecond},
			{"Not429", http.StatusServiceUnavailable, http.Header{"X-Ratelimit-Global": {"true"}, "Retry-After": {"2"}}, 0},
		} {
			g := &discordGlobal{}
			resp := &http.Response{StatusCode: tc.status, Header: tc.header}
			if c := g.learn(resp, nil, nil, resilient.Transient); c != resilient.Transient {
				t.Errorf("%s: learn = %v, want the default decision kept", tc.name, c)
			}
			var got time.Duration
			if end := g.until.Load(); end != nil {
				got = time.Until(*end)
			}
			if got != tc.want {
				t.Errorf("%s: pause of %v started, want %v", tc.name, got, tc.want)
			}
		}
		g, _ := discordHeld("30")
		shorter := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"X-Ratelimit-Global": {"true"}, "Retry-After": {"2"}}}
		g.learn(shorter, nil, nil, resilient.Throttled)
		if got := time.Until(*g.until.Load()); got != 30*time.Second {
			t.Errorf("after a global 429 of 30s then one of 2s, the pause ends in %v, want 30s", got)
		}
	})
}

// idleCounter is a base RoundTripper that counts its CloseIdleConnections.
type idleCounter struct {
	http.RoundTripper
	closed int
}

func (c *idleCounter) CloseIdleConnections() { c.closed++ }

// TestDiscordSessionClosesIdleConnections: the session client's
// CloseIdleConnections reaches the base transport through discordGlobal
// and resilient, as http.Client.CloseIdleConnections expects.
func TestDiscordSessionClosesIdleConnections(t *testing.T) {
	base := &idleCounter{RoundTripper: http.DefaultTransport}
	s, err := NewDiscordSession("Bot test-token", base)
	if err != nil {
		t.Fatal(err)
	}
	s.Client.CloseIdleConnections()
	if base.closed != 1 {
		t.Errorf("the base's CloseIdleConnections called %d times, want 1", base.closed)
	}
}

// TestDiscordCallersClassifierReplacesLearn: a resilient.WithClassifier
// among the recipe's options replaces learn, as its doc says: the
// caller's classifier decides, and a global 429 then holds no other call.
func TestDiscordCallersClassifierReplacesLearn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &discordGlobalAPI{pause: 2 * time.Second}
		var called int
		mine := resilient.WithClassifier(func(_ *http.Response, _ *resilient.APIError, _ error, def resilient.Class) resilient.Class {
			called++
			return def
		})
		srv := newServer(t, api)
		s := discordSession(t, srv, NewDiscordSession, mine, resilient.WithMaxRetries(0))
		if _, err := s.ChannelMessageSend("1", "hello"); err == nil {
			t.Fatal("ChannelMessageSend succeeded, want the global 429 it drew")
		}
		g := s.Client.Transport.(*discordGlobal)
		if called != 1 || g.until.Load() != nil {
			t.Errorf("the caller's classifier called %d times, global pause started %v; want 1, none", called, g.until.Load() != nil)
		}
	})
}
