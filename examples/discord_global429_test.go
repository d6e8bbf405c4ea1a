package examples

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// discordGlobalSession returns a Session of NewDiscordSession whose
// requests reach api, a fake of Discord's REST API that answers the bot's
// global 429s (see discordGlobalPaused).
func discordGlobalSession(t *testing.T, api http.Handler) *discordgo.Session {
	t.Helper()
	return discordSession(t, newServer(t, api), NewDiscordSession)
}

// discordGlobalPaused sets w's Content-Type to JSON and, when now is before
// until, the end of the bot's global pause, answers w with Discord's 429 of
// the global limit (X-RateLimit-Global: true, and a Retry-After of the
// pause's rest, in whole seconds rounded up) and reports true; otherwise
// it leaves w's answer to the caller and reports false.
func discordGlobalPaused(w http.ResponseWriter, now, until time.Time) bool {
	w.Header().Set("Content-Type", "application/json")
	if !now.Before(until) {
		return false
	}
	secs := until.Sub(now).Seconds()
	w.Header().Set("Retry-After", strconv.Itoa(int(secs+0.999)))
	w.Header().Set("X-RateLimit-Global", "true")
	w.Header().Set("X-RateLimit-Scope", "global")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"message": "You are being rate limited.", "retry_after": ` + strconv.FormatFloat(secs, 'f', 3, 64) + `, "global": true}`))
	return true
}
