package resilient

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuotaStoreDiscordGlobal: with a QuotaStore, a 429 of Discord's
// global limit that member A gets holds member B's requests to a bucket
// A never made (B's channel 2), which the pauses of A's partitions do not
// reach: B's request waits the pause out instead of being sent into it.
// The state of the global limit is asked of the store once per host and
// credential, by a Transport whose host announced a quota of its own (a
// bucket), and never for a host that announced none.
func TestQuotaStoreDiscordGlobal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &discordRT{globalAt: 3, globalFor: 2 * time.Second}
		mem := new(memQuota)
		a, b := New(d, WithQuotaStore(mem)), New(d, WithQuotaStore(mem))
		send := func(tr *Transport, channel int) {
			t.Helper()
			resp, err := discordSend(t, tr, http.MethodPost, channel)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("channel %d: status %d, want 200", channel, resp.StatusCode)
			}
		}
		send(b, 2) // B's bucket of channel 2
		send(a, 1)
		go send(a, 1) // the 3rd request hits the global limit
		synctest.Wait()
		start := time.Now()
		send(b, 2)
		if d.intoGlobal != 0 {
			t.Errorf("%d requests were sent during the global limit's pause, want none", d.intoGlobal)
		}
		if w := time.Since(start); w < 2*time.Second {
			t.Errorf("B's request went after %v, want after the global pause (2s)", w)
		}
		synctest.Wait()
		asked := 0
		mem.mu.Lock()
		for _, name := range mem.names {
			if strings.Contains(name, globalResource) {
				asked++
			}
		}
		mem.mu.Unlock()
		if asked != 2 {
			t.Errorf("the global limit's state was asked %d times, want once per Transport", asked)
		}

		// A host that announces no quota of its own costs no state of a
		// global limit.
		plain := New(handlerRT{throttlingServer("1")}, WithQuotaStore(mem))
		for _, path := range []string{"/x", "/throttle", "/x"} {
			do(t, &http.Client{Transport: plain}, "GET", "https://api.test"+path)
		}
		mem.mu.Lock()
		defer mem.mu.Unlock()
		for _, name := range mem.names {
			if strings.HasPrefix(name, "https://api.test") && strings.Contains(name, globalResource) {
				t.Errorf("the store was asked for %q", name)
			}
		}
	})
}

// TestResetHostClearsFleetGlobal: Transport.ResetHost clears, for the
// fleet, the QuotaStore's pause of a host's global limit, as it clears
// those of its partitions: B's request waiting out that pause in its
// bucket of channel 2 is sent as soon as A calls ResetHost.
func TestResetHostClearsFleetGlobal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, a, b, send := globalLimited(t, new(memQuota))
		done := make(chan struct{})
		go func() { defer close(done); send(b, 2) }()
		synctest.Wait() // B waits out the fleet's pause
		if n := d.count(); n != 3 {
			t.Fatalf("%d requests before the reset, want 3", n)
		}
		a.ResetHost("discord.com")
		synctest.Wait()
		if n := d.count(); n != 4 {
			t.Errorf("%d requests at A's ResetHost, want B's sent at once", n)
		}
		<-done
	})
}

// resetLog is a QuotaStore over a memQuota whose partitions record the
// order of their Resets, by name; they implement QuotaWatcher when
// watched.
type resetLog struct {
	m       *memQuota
	watched bool
	mu      sync.Mutex
	order   []string
}

func (l *resetLog) Partition(name string) QuotaPartition {
	p := l.m.Partition(name).(*memPart)
	r := loggedReset{p, name, l}
	if l.watched {
		return struct {
			QuotaPartition
			QuotaResetter
			QuotaWatcher
		}{p, r, p}
	}
	return struct {
		QuotaPartition
		QuotaResetter
	}{p, r}
}

func (l *resetLog) resets() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}

type loggedReset struct {
	p    *memPart
	name string
	l    *resetLog
}

func (r loggedReset) Reset() {
	r.l.mu.Lock()
	r.l.order = append(r.l.order, r.name)
	r.l.mu.Unlock()
	r.p.Reset()
}

// TestResetHostGlobalLast: Transport.ResetHost resets the store's state
// of the host's global limit after the host's other partitions (see
// QuotaResetter), so that a store that tells the fleet its resets in that
// order tells the members the global limit's last; and A's own request
// waiting out the global pause, in a store without QuotaWatcher, is
// still sent at once (into the server's pause, which knows nothing of the
// reset): its wait ends once the global limit is reset too, not on a
// partition reset before it, where it would find the global pause in
// force and wait it out.
func TestResetHostGlobalLast(t *testing.T) {
	for _, watched := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			store := &resetLog{m: new(memQuota), watched: watched}
			d, a, _, send := globalLimited(t, store)
			done := make(chan struct{})
			go func() { defer close(done); send(a, 1) }()
			synctest.Wait() // A's request waits out the pause
			a.ResetHost("discord.com")
			synctest.Wait()
			if n := d.count(); n != 4 {
				t.Errorf("watched %v: %d requests at A's ResetHost, want A's waiting one sent at once", watched, n)
			}
			<-done
			order := store.resets()
			if len(order) < 3 || !strings.Contains(order[len(order)-1], globalResource) {
				t.Fatalf("watched %v: ResetHost reset %q, want the host's partitions, then the global limit", watched, order)
			}
			for _, name := range order[:len(order)-1] {
				if strings.Contains(name, globalResource) {
					t.Errorf("watched %v: ResetHost reset %q, the global limit before another partition", watched, order)
				}
			}
		})
	}
}

// globalLimited returns Transports A (which does not retry) and B sharing
// store, over a Discord whose third request hits the bot's global limit
// for 30s: B learned its bucket of channel 2, then A's second post to
// channel 1 got the global 429. send sends tr's post to a channel and
// returns its status (0 after an error of t).
func globalLimited(t *testing.T, store QuotaStore) (d *discordRT, a, b *Transport, send func(tr *Transport, channel int) int) {
	t.Helper()
	d = &discordRT{globalAt: 3, globalFor: 30 * time.Second}
	a, b = New(d, WithQuotaStore(store), WithMaxRetries(0)), New(d, WithQuotaStore(store))
	send = func(tr *Transport, channel int) int {
		t.Helper()
		resp, err := discordSend(t, tr, http.MethodPost, channel)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	send(b, 2)
	send(a, 1)
	if code := send(a, 1); code != http.StatusTooManyRequests {
		t.Fatalf("A's request into the global limit: %d, want 429", code)
	}
	return d, a, b, send
}

// count returns the requests d received.
func (d *discordRT) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// TestRateLimitGlobalPauseHoldsItsCredentialAlone: Discord's global limit
// is per bot: one bot's global 429 (Retry-After: 30) pauses every
// partition of its own credential, not those of another bot on the same
// host, whose request to the bucket it learned goes at once.
func TestRateLimitGlobalPauseHoldsItsCredentialAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _, send := discordGlobalServer(t, "a")
		const route = "/api/v10/channels/1/messages"
		for _, bot := range []string{"a", "b"} { // each learns the channel's bucket
			resp, err := send(bot, route)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if resp, err := send("a", "/api/v10/users/@me"); err == nil {
			resp.Body.Close()
		}
		resp, err := send("b", route)
		if err != nil {
			t.Fatalf("bot b's message during bot a's global pause: %v, want it sent", err)
		}
		resp.Body.Close()
		if n := len(srv.seen(route)); n != 3 {
			t.Errorf("the server saw %d messages, want 3", n)
		}
	})
}

// TestRateLimitGlobalPauseHoldsRoutesItsCredentialNeverCalled: the
// routes a Transport learned are its host's, whichever bot's answer named
// their bucket. Bot a learns the bucket of a channel; bot b, which never
// posted there, gets a global 429 (Retry-After: 30), then posts to that
// channel: its request goes to its own partition of the bucket, which does
// not exist yet, and must find the global pause of its credential, not
// reach the server. It was sent into the pause, as no partition held it.
func TestRateLimitGlobalPauseHoldsRoutesItsCredentialNeverCalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, tr, send := discordGlobalServer(t, "b")
		const route = "/api/v10/channels/1/messages"
		resp, err := send("a", route) // bot a learns the channel's bucket
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp, err := send("b", "/api/v10/users/@me"); err == nil {
			resp.Body.Close()
		}
		if w := hostState(t, tr, "https://discord.test"+route, "Authorization", "Bot b").Writes; w.PausedUntil.IsZero() {
			t.Errorf("HostState of bot b's messages: %+v, want them paused by its global limit", w)
		}
		resp, err = send("b", route)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("bot b's message during its own global pause: %v, want ErrRateLimited", err)
		}
		if n := len(srv.seen(route)); n != 1 {
			t.Errorf("the server saw %d messages, want bot a's 1: none of bot b's during its global pause", n)
		}
	})
}

// discordGlobalServer is a Discord host for the tests above: bot paused's
// GET /api/v10/users/@me gets a global 429 (Retry-After: 30), and every
// other request the bucket chan1 (4 left, reset after 5s). It returns the
// server, a Transport to it without retries, and send, which posts to a
// path as a bot.
func discordGlobalServer(t *testing.T, paused string) (*recServer, *Transport, func(bot, path string) (*http.Response, error)) {
	srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") == "Bot "+paused && r.URL.Path == "/api/v10/users/@me" {
			w.Header().Set("Retry-After", "30")
			w.Header().Set("X-RateLimit-Global", "true")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("X-RateLimit-Bucket", "chan1")
		w.Header().Set("X-RateLimit-Remaining", "4")
		w.Header().Set("X-RateLimit-Reset-After", "5")
	}}
	tr := New(handlerRT{srv}, WithMaxRetries(0))
	send := func(bot, path string) (*http.Response, error) {
		req := newRequest(t, timeoutCtx(t, time.Second), http.MethodPost, "https://discord.test"+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bot "+bot)
		return tr.RoundTrip(req)
	}
	return srv, tr, send
}
