package resilient

import (
	"net/http"
	"strings"
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
		d := &discordRT{globalAt: 3, globalFor: 30 * time.Second}
		mem := new(memQuota)
		a, b := New(d, WithQuotaStore(mem), WithMaxRetries(0)), New(d, WithQuotaStore(mem))
		send := func(tr *Transport, channel int) int {
			t.Helper()
			resp, err := discordSend(t, tr, http.MethodPost, channel)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		send(b, 2)
		send(a, 1)
		if code := send(a, 1); code != http.StatusTooManyRequests {
			t.Fatalf("A's request into the global limit: %d, want 429", code)
		}
		done := make(chan struct{})
		go func() { defer close(done); send(b, 2) }()
		calls := func() int {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.calls
		}
		synctest.Wait() // B waits out the fleet's pause
		if n := calls(); n != 3 {
			t.Fatalf("%d requests before the reset, want 3", n)
		}
		a.ResetHost("discord.com")
		synctest.Wait()
		if n := calls(); n != 4 {
			t.Errorf("%d requests at A's ResetHost, want B's sent at once", n)
		}
		<-done
	})
}
