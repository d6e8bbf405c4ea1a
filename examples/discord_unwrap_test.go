package examples

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
)

// TestDiscordSessionUnwrapsToItsTransport: the session's client Transport,
// which holds every route after a global 429 (discordGlobal), gives the
// resilient.Transport under it through Unwrap, so that a user keeps its
// HostState and ResetHost, which a type assertion of s.Client.Transport
// gave until 2026-12-06, when discordGlobal came around it.
func TestDiscordSessionUnwrapsToItsTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, &discordGlobalAPI{})
		s := discordSession(t, srv, NewDiscordSession)
		u, ok := s.Client.Transport.(interface{ Unwrap() http.RoundTripper })
		if !ok {
			t.Fatalf("s.Client.Transport (%T) has no Unwrap() http.RoundTripper, want one that returns the session's *resilient.Transport", s.Client.Transport)
		}
		rt, ok := u.Unwrap().(*resilient.Transport)
		if !ok {
			t.Fatalf("Unwrap() = %T, want *resilient.Transport", u.Unwrap())
		}
		if _, err := s.ChannelMessages("2", 50, "", "", ""); err != nil {
			t.Fatalf("ChannelMessages: %v, want its messages", err)
		}
		req, _ := http.NewRequest(http.MethodGet, "https://discord.com/api/v9/channels/2/messages", nil)
		st, err := rt.HostState(req)
		if err != nil || st.Breaker != resilient.BreakerClosed {
			t.Errorf("HostState(discord.com) = %v, %v; want a closed breaker", st.Breaker, err)
		}
		if got := rt.MaxElapsed(); got != s.Client.Timeout {
			t.Errorf("Unwrap().MaxElapsed() = %v, want the client's Timeout %v", got, s.Client.Timeout)
		}
	})
}
