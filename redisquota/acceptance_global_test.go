package redisquota_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// discordAPI answers as Discord's REST API does for the tests of its
// global limit: each route (method and path) counts against a bucket of
// its own, named by X-RateLimit-Bucket, with a quota no test spends; the
// next request of the route armed hits the bot's global limit: a 429 with
// X-RateLimit-Global: true and Retry-After, which names no bucket. Until
// the Retry-After ends, every request counts as sent into the global
// limit (into), and is answered as usual: a client's own 429 would pause
// it, and hide whether the next request would have been sent.
type discordAPI struct {
	mu         sync.Mutex
	armed      string // "POST /path": the route whose next request hits the global limit
	retryAfter time.Duration
	until      time.Time
	into       []string // the routes of the requests sent during the global limit
}

func (d *discordAPI) arm(route string, retryAfter time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed, d.retryAfter = route, retryAfter
}

func (d *discordAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	route := r.Method + " " + r.URL.Path
	now := time.Now()
	d.mu.Lock()
	inGlobal := now.Before(d.until)
	if inGlobal {
		d.into = append(d.into, route)
	}
	h := w.Header()
	if route == d.armed {
		d.armed, d.until = "", now.Add(d.retryAfter)
		d.mu.Unlock()
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.retryAfter.Seconds()))))
		h.Set("X-RateLimit-Global", "true")
		h.Set("X-RateLimit-Scope", "global")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	d.mu.Unlock()
	sum := sha256.Sum256([]byte(route))
	h.Set("X-RateLimit-Bucket", hex.EncodeToString(sum[:16]))
	h.Set("X-RateLimit-Limit", "1000")
	h.Set("X-RateLimit-Remaining", "999")
	h.Set("X-RateLimit-Reset-After", "60")
	w.Write([]byte(`{}`))
}

func (d *discordAPI) intoGlobal() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.into...)
}

// discordCall sends one request of a bot through c, with opts as the
// call's options, and returns its status.
func discordCall(c *http.Client, method, url string, opts ...resilient.Option) (int, error) {
	ctx := context.Background()
	if len(opts) > 0 {
		ctx = resilient.WithCallOptions(ctx, opts...)
	}
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(`{"content":"hi"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bot token-1")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// discordRequest returns a request of the bot for HostState.
func discordRequest(method, url string) *http.Request {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bot token-1")
	return req
}

// discordFleet starts a discordAPI and two members of one fleet, A and B,
// whose Transports share a Store's fleet, and has A post to channel 1 and
// B to channel 2, so that each learns its bucket. channel(n) is the URL of
// channel n's messages. Everything is closed at the test's end.
func discordFleet(t *testing.T) (d *discordAPI, a, b *resilient.Transport, channel func(int) string) {
	t.Helper()
	d, _, a, b, channel = discordFleetStores(t)
	return d, a, b, channel
}

// discordFleetStores is discordFleet, which also returns the members'
// Stores (f.a is A's, f.b B's).
func discordFleetStores(t *testing.T) (d *discordAPI, f *fleetOfTwo, a, b *resilient.Transport, channel func(int) string) {
	t.Helper()
	f = twoMembers(t)
	d = new(discordAPI)
	api := resilienttest.Wrap(d, resilienttest.Faults{})
	t.Cleanup(api.Close)
	base := api.Transport()
	t.Cleanup(base.CloseIdleConnections)
	a = resilient.New(base, resilient.WithQuotaStore(f.a))
	b = resilient.New(base, resilient.WithQuotaStore(f.b))
	channel = func(n int) string { return api.URL + "/api/v10/channels/" + strconv.Itoa(n) + "/messages" }
	for _, c := range []struct {
		who string
		tr  *resilient.Transport
		n   int
	}{{"A", a, 1}, {"B", b, 2}} {
		if code, err := discordCall(&http.Client{Transport: c.tr}, http.MethodPost, channel(c.n)); code != 200 {
			t.Fatalf("%s's first post to channel %d: %d, %v", c.who, c.n, code, err)
		}
	}
	return d, f, a, b, channel
}

// TestGlobalLimitHoldsEveryMember: Discord's global limit is the bot's,
// across routes and processes: its 429 (X-RateLimit-Global: true,
// Retry-After) means that no request of the bot may be sent until it
// ends. Member A's request to channel 1 gets it; member B, which shares
// A's Store's fleet and has learned the bucket of channel 2's messages
// (a partition A never made), must send nothing during the pause: not to
// channel 2 (its bucket), not to a route it never called (the host's
// partition of reads, which B never made), not to another new route of
// its writes; a call that may not wait that long (WithMaxRetryAfter) is
// refused with ErrRateLimited, unsent. Once the pause ends they all go.
func TestGlobalLimitHoldsEveryMember(t *testing.T) {
	d, at, bt, channel := discordFleet(t)
	a, b := &http.Client{Transport: at}, &http.Client{Transport: bt}
	const pause = 5 * time.Second
	d.arm("POST /api/v10/channels/1/messages", pause)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, err := discordCall(a, http.MethodPost, channel(1)); code != 200 {
			t.Errorf("A's post into the global limit: %d, %v; want 200 after its pause", code, err)
		}
	}()
	// B's host partition of writes, which it holds, is paused in the
	// store as the pause's news reaches B; then the pause of the bot's
	// global limit reaches it too, at once, or never will (half the pause
	// is left for B's calls).
	waitFor(t, "B hears of A's pause", func() bool {
		s, _ := bt.HostState(discordRequest(http.MethodPost, channel(3)))
		return s.Writes.PausedUntil.After(time.Now())
	})
	for end := time.Now().Add(pause / 2); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if s, _ := bt.HostState(discordRequest(http.MethodPost, channel(2))); s.Writes.PausedUntil.After(time.Now()) {
			break
		}
	}
	if code, err := discordCall(b, http.MethodPost, channel(2), resilient.WithMaxRetryAfter(time.Second)); !errors.Is(err, resilient.ErrRateLimited) {
		t.Errorf("B's post to channel 2 that may wait 1s: %d, %v; want ErrRateLimited", code, err)
	}
	var wg sync.WaitGroup
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, channel(2)}, // its bucket's partition
		{http.MethodGet, channel(2)},  // a new route, of a class B never sent
		{http.MethodPost, channel(3)}, // a new route of its writes
	} {
		wg.Go(func() {
			if code, err := discordCall(b, c.method, c.url); code != 200 {
				t.Errorf("B's %s %s: %d, %v; want 200 after the pause", c.method, c.url, code, err)
			}
		})
	}
	wg.Wait()
	<-done
	if into := d.intoGlobal(); len(into) != 0 {
		t.Errorf("%d requests were sent during the bot's global limit: %q; want none", len(into), into)
	}
}

// TestGlobalLimitResetHost: Transport.ResetHost clears the fleet's pause
// of the bot's global limit, as it clears the pauses of the partitions:
// after A's ResetHost, B's call already waiting for the pause to end in
// its bucket of channel 2 goes at once, and so do its next calls, to that
// bucket and to a route it never called.
func TestGlobalLimitResetHost(t *testing.T) {
	d, at, bt, channel := discordFleet(t)
	a, b := &http.Client{Transport: at}, &http.Client{Transport: bt}
	// A pause longer than the waits of this test, shorter than the
	// longest a call waits (DefaultMaxRetryAfter): B's call waits.
	d.arm("POST /api/v10/channels/1/messages", 50*time.Second)
	if code, err := discordCall(a, http.MethodPost, channel(1), resilient.WithMaxRetryAfter(time.Second)); code != http.StatusTooManyRequests {
		t.Fatalf("A's post into the global limit: %d, %v; want its 429 at once", code, err)
	}
	paused := func(method, url string) bool {
		s, _ := bt.HostState(discordRequest(method, url))
		if method == http.MethodGet {
			return s.Reads.PausedUntil.After(time.Now())
		}
		return s.Writes.PausedUntil.After(time.Now())
	}
	waitFor(t, "B's bucket of channel 2 holds the global pause", func() bool { return paused(http.MethodPost, channel(2)) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, err := discordCall(b, http.MethodPost, channel(2)); code != 200 {
			t.Errorf("B's post waiting for the pause: %d, %v; want 200", code, err)
		}
	}()
	u, _ := url.Parse(channel(1))
	at.ResetHost(u.Host)
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatalf("B's post waiting for the pause did not go within %v of A's ResetHost", waitBound)
	}
	waitFor(t, "B's bucket of channel 2 free", func() bool { return !paused(http.MethodPost, channel(2)) })
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, channel(2)},
		{http.MethodGet, channel(4)},
	} {
		if code, err := discordCall(b, c.method, c.url, resilient.WithMaxRetryAfter(time.Second)); code != 200 {
			t.Errorf("B's %s %s after A's ResetHost: %d, %v; want 200", c.method, c.url, code, err)
		}
	}
	if into := d.intoGlobal(); len(into) != 3 {
		t.Errorf("the server got %q after the global 429, want B's three calls", into)
	}
}
