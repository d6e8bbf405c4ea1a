package resilient_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// This file checks issue 16's promises of the core from outside: what a
// QuotaStore shares reaches every Transport that uses it.

// pauseStore is a QuotaStore of the test's own that shares only the
// pause: the smallest fleet, as a user would write one to try
// WithQuotaStore. Its partitions know no quota, so Take always grants.
type pauseStore struct {
	mu    sync.Mutex
	parts map[string]*pausePart
}

type pausePart struct {
	until  atomic.Int64 // UnixNano; 0 for none
	pauses atomic.Int32
}

func (s *pauseStore) Partition(name string) resilient.QuotaPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		s.parts = make(map[string]*pausePart)
	}
	p := s.parts[name]
	if p == nil {
		p = new(pausePart)
		s.parts[name] = p
	}
	return p
}

func (s *pauseStore) part(name string) *pausePart {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[name]
}

func (p *pausePart) Take(time.Time) (time.Duration, bool, <-chan struct{}) { return 0, true, nil }

func (p *pausePart) PauseUntil() time.Time {
	if u := p.until.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}

func (p *pausePart) Pause(until time.Time) {
	p.pauses.Add(1)
	for {
		old := p.until.Load()
		if until.UnixNano() <= old || p.until.CompareAndSwap(old, until.UnixNano()) {
			return
		}
	}
}

func (p *pausePart) Learn(resilient.RateLimitInfo, time.Duration) {}

// TestQuotaStorePauseReachesQuietMembers: issue 16 — a 429 with
// Retry-After that one member of a fleet receives pauses every member. The
// API announces no quota on its successes (Slack, Stripe and most APIs
// send only the 429's Retry-After), so no member has learned anything of
// the partition: the member that calls for the first time, and the one
// whose calls so far all succeeded, still wait for the pause the store
// holds, instead of sending to a vendor that already said stop.
func TestQuotaStorePauseReachesQuietMembers(t *testing.T) {
	const url = "https://slack.test/api/chat.postMessage"
	for _, warm := range []bool{false, true} {
		name := map[bool]string{false: "new member", true: "member with quiet successes"}[warm]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := new(pauseStore)
				a := &answers{steps: []answer{{status: 429, header: http.Header{"Retry-After": {"5"}}}, {status: 200}}}
				b := &answers{steps: []answer{{status: 200}}}
				ta := resilient.New(a, resilient.WithQuotaStore(store))
				tb := resilient.New(b, resilient.WithQuotaStore(store))
				if warm {
					if status, _, err := call(t, tb, context.Background(), "GET", url, nil); status != 200 {
						t.Fatalf("B's first call: %d, %v", status, err)
					}
				}
				start := time.Now()
				done := make(chan int, 1)
				go func() {
					status, _, _ := call(t, ta, context.Background(), "GET", url, nil) // 429, then its retry after 5s
					done <- status
				}()
				synctest.Wait() // A got its 429 and waits
				if p := store.part("https://slack.test reads"); p == nil || p.pauses.Load() != 1 {
					t.Fatalf("the store holds no pause of https://slack.test reads after A's 429")
				}
				if status, _, err := call(t, tb, context.Background(), "GET", url, nil); status != 200 {
					t.Fatalf("B's call: %d, %v", status, err)
				}
				if status := <-done; status != 200 {
					t.Fatalf("A's call: %d, want its retry's 200", status)
				}
				at, _, _ := b.sent()
				last := at[len(at)-1]
				if d := last.Sub(start); d < 5*time.Second {
					t.Errorf("B's call reached the server %v after A's 429 asked for 5s: the fleet's pause did not hold it", d)
				}
			})
		})
	}
}

// pacedStore is a QuotaStore whose partitions are paced by the fleet: each
// Take is granted a token due after delay, as a fleet whose members share a
// learned quota hands them out.
type pacedStore struct {
	delay time.Duration
	takes atomic.Int32
}

func (s *pacedStore) Partition(string) resilient.QuotaPartition { return s }

func (s *pacedStore) Take(time.Time) (time.Duration, bool, <-chan struct{}) {
	s.takes.Add(1)
	return s.delay, true, nil
}

func (s *pacedStore) PauseUntil() time.Time                        { return time.Time{} }
func (s *pacedStore) Pause(time.Time)                              {}
func (s *pacedStore) Learn(resilient.RateLimitInfo, time.Duration) {}

// TestQuotaStorePacesNewMember: issue 16 — what one member learns of the
// quota reaches every member: a member that joins a fleet already pacing
// its quota takes its tokens from the fleet from its first request on,
// instead of sending unpaced until a response of its own announces the
// quota (each member's first burst would overshoot what the others
// already spend).
func TestQuotaStorePacesNewMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &pacedStore{delay: 2 * time.Second}
		b := &answers{steps: []answer{{status: 200}}}
		tr := resilient.New(b, resilient.WithQuotaStore(store))
		start := time.Now()
		if status, _, err := call(t, tr, context.Background(), "GET", "https://api.test/v1/posts", nil); status != 200 {
			t.Fatalf("call: %d, %v", status, err)
		}
		at, _, _ := b.sent()
		if store.takes.Load() != 1 || len(at) != 1 || at[0].Sub(start) != 2*time.Second {
			t.Fatalf("%d takes, %d requests, the first sent after %v; want 1, 1, after the fleet's 2s", store.takes.Load(), len(at), at[0].Sub(start))
		}
	})
}

// TestQuotaStoreGlobalPauseReachesMembers: a 429 of a host's global limit
// (Discord's X-RateLimit-Global) pauses every route of the credential, and
// through the store every member's: B's GET, in a partition A had not used
// before its 429, waits for the pause too.
func TestQuotaStoreGlobalPauseReachesMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(pauseStore)
		a := &answers{steps: []answer{{status: 429, header: http.Header{"X-Ratelimit-Global": {"true"}, "X-Ratelimit-Scope": {"global"}, "Retry-After": {"5"}}}, {status: 200}}}
		b := &answers{steps: []answer{{status: 200}}}
		ta := resilient.New(a, resilient.WithQuotaStore(store))
		tb := resilient.New(b, resilient.WithQuotaStore(store))
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			call(t, ta, context.Background(), "POST", "https://discord.test/api/v10/channels/1/messages", nil) // the global 429, then its retry
		}()
		synctest.Wait()
		if status, _, err := call(t, tb, context.Background(), "GET", "https://discord.test/api/v10/channels/2/messages", nil); status != 200 {
			t.Fatalf("B's call: %d, %v", status, err)
		}
		<-done
		at, _, _ := b.sent()
		if d := at[0].Sub(start); d < 5*time.Second {
			t.Errorf("B's GET reached the server %v after A's global 429 asked for 5s", d)
		}
	})
}
