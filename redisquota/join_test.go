package redisquota_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestJoinDuringPauseWaitsForState: a member that meets a partition while
// the fleet is paused (a Store made during the pause: a pod scaled up; or a
// Store that had never used the partition) waits for the partition's state
// to load before its first request, and then honors the pause: none of its
// requests reaches the server before the pause ends. Before, its first
// Take answered at once, unpaced, from the empty state it had not loaded.
func TestJoinDuringPauseWaitsForState(t *testing.T) {
	for _, tc := range []struct {
		name string
		join func(f *fleetOfTwo) *redisquota.Store
	}{
		{"new store", func(f *fleetOfTwo) *redisquota.Store {
			s := redisquota.New(newRedis(t, f.addr), redisquota.WithPrefix(f.prefix))
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"new partition", func(f *fleetOfTwo) *redisquota.Store { return f.b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := twoMembers(t)
			rec := &arrivals{}
			quiet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
			api := resilienttest.Wrap(quiet, resilienttest.Faults{}, resilienttest.WithExchanges(rec.add))
			defer api.Close()
			url := api.URL + "/v1/items"
			name := "http://" + strings.TrimPrefix(api.URL, "http://") + " reads"

			// A got a 429 with a Retry-After of 2s: the fleet is paused.
			until := time.Now().Add(2 * time.Second)
			f.a.Partition(name).Pause(until)
			waitFor(t, "A's pause written", func() bool { return f.a.Stats().PausesSent > 0 })
			if !f.b.Subscribed() {
				waitFor(t, "B subscribed", f.b.Subscribed)
			}

			s := tc.join(f)
			base := api.Transport()
			defer base.CloseIdleConnections()
			c := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(s))}
			getOK(t, c, url)
			in, _ := rec.snapshot()
			if len(in) != 1 {
				t.Fatalf("server: %d requests, want 1", len(in))
			}
			if in[0].Before(until) {
				t.Errorf("the joining member's request arrived %v before the fleet's pause ended", until.Sub(in[0]))
			}
		})
	}
}

// TestJoinShortDeadlineNotRefused: an attempt whose deadline comes before
// WithFallbackAfter does not wait for the partition's state to load (see
// resilient.QuotaDeadlineTaker): it goes at once, as a plain client's
// would, and is never refused for Redis's time, even while Redis does not
// answer at all.
func TestJoinShortDeadlineNotRefused(t *testing.T) {
	rs := startRedisServer(t)
	prefix := testPrefix(t, rs.addr())
	s := redisquota.New(newRedis(t, rs.addr()), redisquota.WithPrefix(prefix),
		redisquota.WithFallbackAfter(time.Hour), redisquota.WithTimeout(time.Minute))
	defer s.Close()
	waitFor(t, "subscribed", s.Subscribed)
	admin := newRedis(t, rs.addr())
	// WRITE holds every script (the state's first read) until the test
	// lifts it, before the Store closes.
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 600000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(context.Background(), "CLIENT", "UNPAUSE")
	q := s.Partition("p").(resilient.QuotaDeadlineTaker)
	now := time.Now()
	if d, ok, _ := q.TakeBefore(now, now.Add(time.Second)); !ok || d != 0 {
		t.Errorf("TakeBefore with a deadline before the fallback = %v, %v; want at once", d, ok)
	}
	if d, ok, retry := q.TakeBefore(now, time.Time{}); ok || d <= 0 || retry == nil {
		t.Errorf("TakeBefore without a deadline while the state loads = %v, %v, %v; want a wait for it", d, ok, retry)
	}
}

// TestJoinQuotaKnownByFleet: a member that joins a fleet that knows the
// partition's quota paces its first requests by it, instead of sending
// them unpaced until its first lease: a burst of 20 Takes at once, before
// its state is read, gets no unpaced token.
func TestJoinQuotaKnownByFleet(t *testing.T) {
	f := twoMembers(t)
	qa := f.a.Partition("p")
	qa.Learn(quota(10), time.Second)
	takeToken(t, qa)
	waitFor(t, "A leases", func() bool { return f.a.Stats().Leases > 0 })
	qb := f.b.Partition("p")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { qb.Take(time.Now()) })
	}
	wg.Wait()
	if n := f.b.Stats().Unpaced; n != 0 {
		t.Errorf("the joining member sent %d requests unpaced, the fleet's quota known", n)
	}
}
