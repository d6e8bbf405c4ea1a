package examples

import (
	"net/http"
	"testing"

	"github.com/resilienthttp/resilient"
)

// TestDiscordGlobalScopeAloneStartsThePause shows what discordGlobal's doc
// says of a 429 of the bot's global limit: X-RateLimit-Scope: global
// alone, without X-RateLimit-Global, starts the pause too. (The tests of
// the hold send both headers, and passed with the scope not read.)
func TestDiscordGlobalScopeAloneStartsThePause(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope string
		held  bool
	}{
		{"Global", "global", true},
		{"GlobalUpperCase", "GLOBAL", true},
		{"User", "user", false},
		{"Shared", "shared", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &discordGlobal{}
			resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
			resp.Header.Set("X-RateLimit-Scope", tc.scope)
			resp.Header.Set("Retry-After", "2")
			if c := g.learn(resp, nil, nil, resilient.Throttled); c != resilient.Throttled {
				t.Errorf("learn = %v, want the default decision kept", c)
			}
			if held := g.until.Load() != nil; held != tc.held {
				t.Errorf("X-RateLimit-Scope: %s: pause started %v, want %v", tc.scope, held, tc.held)
			}
		})
	}
}
