package redisquota_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestGlobalLimitResetHostByAnotherMember: the fleet's pause of the bot's
// global limit is cleared for every member by the ResetHost of any member,
// not only of the one that got the global 429. A gets it on channel 1;
// C, which posts to channel 1 too, and B, which posts to channel 2 alone,
// are held by it. B then calls ResetHost: once its reset of the global
// limit (the last it writes) reaches C, C's calls go, to channel 1, which
// B never called, and to a route of a class B never sent. Before, A's
// global 429 paused, in the store, the partitions A held (its bucket of
// channel 1, the host's reads), which only a member holding them resets:
// C waited the pause out after B's ResetHost.
func TestGlobalLimitResetHostByAnotherMember(t *testing.T) {
	f := twoMembers(t)
	sc := redisquota.New(newRedis(t, f.addr), redisquota.WithPrefix(f.prefix))
	t.Cleanup(func() { sc.Close() })
	d := new(discordAPI)
	api := resilienttest.Wrap(d, resilienttest.Faults{})
	t.Cleanup(api.Close)
	base := api.Transport()
	t.Cleanup(base.CloseIdleConnections)
	at := resilient.New(base, resilient.WithQuotaStore(f.a))
	bt := resilient.New(base, resilient.WithQuotaStore(f.b))
	ct := resilient.New(base, resilient.WithQuotaStore(sc))
	a, b, c := &http.Client{Transport: at}, &http.Client{Transport: bt}, &http.Client{Transport: ct}
	channel := func(n string) string { return api.URL + "/api/v10/channels/" + n + "/messages" }
	for _, m := range []struct {
		who string
		c   *http.Client
		n   string
	}{{"A", a, "1"}, {"C", c, "1"}, {"B", b, "2"}} {
		if code, err := discordCall(m.c, http.MethodPost, channel(m.n)); code != 200 {
			t.Fatalf("%s's first post to channel %s: %d, %v", m.who, m.n, code, err)
		}
	}
	d.arm("POST /api/v10/channels/1/messages", 50*time.Second)
	if code, err := discordCall(a, http.MethodPost, channel("1"), resilient.WithMaxRetryAfter(time.Second)); code != http.StatusTooManyRequests {
		t.Fatalf("A's post into the global limit: %d, %v; want its 429 at once", code, err)
	}
	paused := func(tr *resilient.Transport, method, url string) bool {
		s, _ := tr.HostState(discordRequest(method, url))
		if method == http.MethodGet {
			return s.Reads.PausedUntil.After(time.Now())
		}
		return s.Writes.PausedUntil.After(time.Now())
	}
	waitFor(t, "C's bucket of channel 1 holds the global pause", func() bool { return paused(ct, http.MethodPost, channel("1")) })
	waitFor(t, "B's bucket of channel 2 holds the global pause", func() bool { return paused(bt, http.MethodPost, channel("2")) })

	var global string
	for _, name := range sc.PartitionNames() {
		if strings.Contains(name, " Global limit") {
			global = name
		}
	}
	if global == "" {
		t.Fatalf("C's Store holds no global limit: %q", sc.PartitionNames())
	}
	// B resets once it sees the global pause: A's Store wrote the pauses
	// of the host's partitions before the global limit's (see
	// TestPausesRunInOrder), so B's reset clears them all. Before, the
	// pause of the host's reads could land in Redis after B's ResetHost,
	// which kept it: C's new route of reads waited the pause out.
	u, _ := url.Parse(channel("1"))
	bt.ResetHost(u.Host)
	// B's resets reach C in the order B made them, the global limit's
	// last.
	waitFor(t, "B's reset of the global limit reaches C", func() bool { return sc.Partition(global).PauseUntil().IsZero() })
	for _, r := range []struct{ method, url string }{
		{http.MethodPost, channel("1")},
		{http.MethodGet, channel("5")},
	} {
		if paused(ct, r.method, r.url) {
			s, _ := ct.HostState(discordRequest(r.method, r.url))
			t.Errorf("C's %s %s paused after B's ResetHost reached it: %+v", r.method, r.url, s)
		}
		if code, err := discordCall(c, r.method, r.url, resilient.WithMaxRetryAfter(time.Second)); code != 200 {
			t.Errorf("C's %s %s after B's ResetHost: %d, %v; want 200", r.method, r.url, code, err)
		}
	}
}
