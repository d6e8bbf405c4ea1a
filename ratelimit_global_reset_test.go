package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestResetHostByAnotherMemberClearsFleetGlobal: a global 429 that member
// A gets is cleared for the fleet by the ResetHost of any member, not only
// of one that holds the partitions A held. C posts to channel 1, as A
// does; B posts to channel 2 alone. After A's global 429 and B's
// ResetHost, C's post to channel 1 (a bucket B never made) and its read
// of a route no member called (the host's reads, which B never made) are
// sent at once. Before, the global 429 paused, in the store, every
// partition A held (its bucket of channel 1, the host's partitions of both
// classes), which B's ResetHost did not reset: C waited the 30s out.
func TestResetHostByAnotherMemberClearsFleetGlobal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := new(memQuota)
		d := &globalOnce{at: 4, d: new(discordRT)}
		a := New(d, WithQuotaStore(mem), WithMaxRetries(0))
		b := New(d, WithQuotaStore(mem))
		c := New(d, WithQuotaStore(mem), WithMaxRetries(0))
		send := func(tr *Transport, method string, channel int) int {
			t.Helper()
			resp, err := discordSend(t, tr, method, channel)
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		send(b, http.MethodPost, 2)
		send(a, http.MethodPost, 1)
		send(c, http.MethodPost, 1)
		if code := send(a, http.MethodPost, 1); code != http.StatusTooManyRequests {
			t.Fatalf("A's request into the global limit: %d, want 429", code)
		}
		b.ResetHost("discord.com")
		// Past the bucket's pace (5 per 5s, whose token A and C took),
		// long before the end of the global pause.
		time.Sleep(2 * time.Second)
		for _, r := range []struct {
			method  string
			channel int
		}{{http.MethodPost, 1}, {http.MethodGet, 5}} {
			before := d.d.count()
			go send(c, r.method, r.channel)
			synctest.Wait()
			if n := d.d.count(); n != before+1 {
				t.Errorf("C's %s to channel %d after B's ResetHost: %d requests sent at once, want 1", r.method, r.channel, n-before)
			}
		}
	})
}

// globalOnce answers as d does, but for its at-th request: a 429 of
// Discord's global limit (Retry-After: 30), after which the server is no
// longer in it, so that the requests sent after a ResetHost are answered
// as usual (a second global 429 would pause the fleet again).
type globalOnce struct {
	mu sync.Mutex
	n  int
	at int
	d  *discordRT
}

func (g *globalOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.n++
	hit := g.n == g.at
	g.mu.Unlock()
	if !hit {
		return g.d.RoundTrip(req)
	}
	h := http.Header{"Retry-After": {"30"}, "X-Ratelimit-Global": {"true"}, "X-Ratelimit-Scope": {"global"}}
	return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
}
