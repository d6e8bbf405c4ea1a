package examples

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
)

// discordHoldEnd returns the end of g's global pause, as hold reads it.
func discordHoldEnd(g *discordGlobal) time.Time { return *g.until.Load() }

// TestDiscordGlobalPauseKeepsTheMonotonicClock: the end of the global pause
// that a global 429 starts carries the monotonic clock's reading, so that
// hold measures the wait by that clock (time.Time.Sub uses it when both
// times have one), which a step of the wall clock (NTP, a VM resumed) does
// not move. No API steps the wall clock alone (testing/synctest's fake clock
// has no monotonic reading), so the test checks the
// reading itself (time.Time.String shows it as "m=±"). Until 2026-12-06
// the end was kept in Unix nanoseconds, a wall-clock reading: a step of
// the wall clock back by an hour held every route of the session for
// resilient.DefaultMaxRetryAfter's refusal instead of the 429's seconds,
// and a step forward dropped the hold.
func TestDiscordGlobalPauseKeepsTheMonotonicClock(t *testing.T) {
	// Outside a synctest bubble: the bubble's time.Now has no monotonic
	// reading. Nothing here waits.
	if now := time.Now().String(); !strings.Contains(now, " m=") {
		t.Skipf("time.Now() = %s has no monotonic reading here", now)
	}
	g := &discordGlobal{next: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
	resp.Header.Set("Retry-After", "30")
	resp.Header.Set("X-RateLimit-Global", "true")
	g.learn(resp, nil, nil, resilient.Throttled)
	end := discordHoldEnd(g)
	if got := end.String(); !strings.Contains(got, " m=") {
		t.Errorf("the global pause ends at %s, without a monotonic reading; want one", got)
	}
	if wait := time.Until(end); wait <= 0 || wait > 30*time.Second {
		t.Errorf("the global pause holds for %v, want up to 30s", wait)
	}
}
