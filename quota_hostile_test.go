package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// closedChan returns a channel already closed.
func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// wakingPart is a QuotaPartition whose Take returns delay and ok, with a
// retry channel already closed, and whose PauseUntil returns pause; as a
// QuotaWatcher, its PauseChanged hands out a new channel already closed
// each time. It cancels the call once it is asked more than limit times
// (Take and PauseUntil together): the attempt spins instead of waiting or
// giving up.
type wakingPart struct {
	delay  time.Duration
	ok     bool
	pause  time.Time
	limit  int32
	cancel context.CancelFunc
	asked  atomic.Int32
	takes  atomic.Int32
}

func (p *wakingPart) Partition(string) QuotaPartition    { return p }
func (p *wakingPart) Pause(time.Time)                    {}
func (p *wakingPart) Learn(RateLimitInfo, time.Duration) {}
func (p *wakingPart) PauseChanged() <-chan struct{}      { return closedChan() }
func (p *wakingPart) PauseUntil() time.Time              { p.ask(); return p.pause }
func (p *wakingPart) Take(time.Time) (time.Duration, bool, <-chan struct{}) {
	p.ask()
	p.takes.Add(1)
	return p.delay, p.ok, closedChan()
}

func (p *wakingPart) ask() {
	if p.asked.Add(1) > p.limit {
		p.cancel()
	}
}

// plainWaking hides wakingPart's PauseChanged: a QuotaPartition alone.
type plainWaking struct{ *wakingPart }

func (p plainWaking) Partition(string) QuotaPartition { return struct{ QuotaPartition }{p.wakingPart} }

// TestQuotaStoreTokenLaterIsWaitedFor: a store that holds a token for the
// attempt a second from now (Take with ok) and returns a retry channel
// with it, closed, has the attempt sent at its turn, a second later. The
// channel is Take's word for "ask again" when it gives no token: woken by
// it, the attempt went to the server at once, ahead of the pace the store
// keeps for the fleet.
func TestQuotaStoreTokenLaterIsWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		store := &wakingPart{delay: time.Second, ok: true, limit: 1000, cancel: cancel}
		s := &rtScript{steps: []rtStep{{status: 200}}}
		tr := New(s, WithQuotaStore(plainWaking{store}), WithMaxRetries(0))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
		if err != nil {
			t.Fatalf("err %v, want the response", err)
		}
		resp.Body.Close()
		if at := s.call(0).at.Sub(start); at < time.Second {
			t.Errorf("the attempt was sent %v after the call began, want at the store's turn, 1s", at)
		}
	})
}

// TestQuotaStoreClosedRetryDoesNotSpin: a store that has no token (Take
// without ok) and returns a retry channel already closed, again and again,
// is asked again no more often than one with a delay that is not positive
// (minQuotaRetry), and the attempt is refused with ErrRateLimited once
// WithMaxRetryAfter has passed. It spun on the closed channel, asking the
// store without pause, and in a bubble for ever (no time passes).
func TestQuotaStoreClosedRetryDoesNotSpin(t *testing.T) {
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				maxWait := time.Second
				limit := int32(maxWait/minQuotaRetry) + 10
				store := &wakingPart{delay: delay, ok: false, limit: 2 * limit, cancel: cancel}
				s := &rtScript{steps: []rtStep{{status: 200}}}
				tr := New(s, WithQuotaStore(plainWaking{store}), WithMaxRetries(0), WithMaxRetryAfter(maxWait))
				resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
				if err == nil {
					resp.Body.Close()
				}
				if !errors.Is(err, ErrRateLimited) || s.numCalls() != 0 || store.takes.Load() > limit {
					t.Errorf("err %v after %d attempts and %d takes; want ErrRateLimited, no attempt, %d takes at most", err, s.numCalls(), store.takes.Load(), limit)
				}
			})
		})
	}
}

// TestQuotaWatcherFreshClosedChannelDoesNotSpin: a QuotaWatcher whose
// PauseChanged hands out a new channel already closed each time (a store
// that cannot watch, saying "look again" always) does not make an attempt
// that waits out the fleet's pause spin: it waits on its timer, and goes
// when the pause ends. Only a channel handed out twice was caught
// (TestQuotaWatcherClosedChannel); a fresh one each time woke every wait
// at once, and in a bubble for ever.
func TestQuotaWatcherFreshClosedChannelDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		store := &wakingPart{ok: true, pause: time.Now().Add(30 * time.Second), limit: 1000, cancel: cancel}
		s := &rtScript{steps: []rtStep{{status: 200}}}
		tr := New(s, WithQuotaStore(store), WithMaxRetries(0))
		start := time.Now()
		resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
		if err != nil {
			t.Fatalf("err %v after %d looks at the pause, want the response after the pause", err, store.asked.Load())
		}
		resp.Body.Close()
		if at := s.call(0).at.Sub(start); at < 30*time.Second {
			t.Errorf("the attempt was sent %v after the call began, want after the pause, 30s", at)
		}
	})
}

// racyQuota is a memQuota whose partitions' pause changes, once armed,
// just after PauseChanged hands out its channel, before the Transport
// looks at it: a lawful interleaving of a store whose other goroutines
// signal (redisquota's part.signal, at a lease granted, swaps the channel
// and closes the old one, which a PauseChanged that loaded it a moment
// before has handed out).
type racyQuota struct {
	m   *memQuota
	arm *atomic.Bool
}

func (q racyQuota) Partition(name string) QuotaPartition {
	return racyPart{q.m.Partition(name).(*memPart), q.arm}
}

type racyPart struct {
	*memPart
	arm *atomic.Bool
}

func (p racyPart) PauseChanged() <-chan struct{} {
	ch := p.memPart.PauseChanged()
	if p.arm.CompareAndSwap(true, false) {
		p.signal()
	}
	return ch
}

// signal closes the partition's channel, its pause unchanged.
func (p racyPart) signal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changedLocked()
}

// TestQuotaWatcherChannelClosedAsHandedStillWatches: an attempt of B that
// waits out the fleet's pause, and is handed, after a wake, a channel that
// the store closes at that moment (another signal of its own), still goes
// as soon as A calls ResetHost: the closed channel is not taken for a
// careless store's, and the attempt does not stop watching for the pause's
// changes and wait the pause out on its timer.
func TestQuotaWatcherChannelClosedAsHandedStillWatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := racyQuota{m: new(memQuota), arm: new(atomic.Bool)}
		_, a, done := fleetWaitingOutAPause(t, store)
		store.arm.Store(true)
		racyPart{store.m.part("https://api.test reads"), store.arm}.signal() // B wakes, the pause unchanged
		synctest.Wait()
		start := time.Now()
		a.ResetHost("api.test")
		if code := <-done; code != 200 {
			t.Fatalf("B's call: %d, want 200", code)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("B's waiting call went %v after A's ResetHost, want at once", waited)
		}
	})
}
