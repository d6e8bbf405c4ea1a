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

// farPausePart is a QuotaPartition whose pause is short until its switch
// time, and then a "for ever" far past what a Duration holds (the year
// 9999). It cancels the call once it is asked for its pause more than a
// hundred times: the attempt spins instead of waiting or giving up.
type farPausePart struct {
	switchAt time.Time
	cancel   context.CancelFunc
	asked    atomic.Int32
}

func (p *farPausePart) Partition(string) QuotaPartition                       { return p }
func (p *farPausePart) Take(time.Time) (time.Duration, bool, <-chan struct{}) { return 0, true, nil }
func (p *farPausePart) Pause(time.Time)                                       {}
func (p *farPausePart) Learn(RateLimitInfo, time.Duration)                    {}
func (p *farPausePart) PauseUntil() time.Time {
	if p.asked.Add(1) > 100 {
		p.cancel()
	}
	if time.Now().Before(p.switchAt) {
		return p.switchAt
	}
	return time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
}

// TestFarStorePauseAfterAWaitIsRefused: an attempt that waited out a
// fleet's pause of 100ms and then finds the store's pause raised past what
// a Duration holds (a store's "for ever", the year 9999) is refused with
// ErrRateLimited, as it is when it finds that pause first: the wait held
// so far plus the saturated wait to the pause's end overflowed to a
// negative wait, which passed WithMaxRetryAfter's bound and the deadline's
// check, and the attempt spun on timers of no time for ever.
func TestFarStorePauseAfterAWaitIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		store := &farPausePart{switchAt: time.Now().Add(100 * time.Millisecond), cancel: cancel}
		s := &rtScript{steps: []rtStep{{status: 200}}}
		tr := New(s, WithQuotaStore(store), WithMaxRetries(0))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrRateLimited) || s.numCalls() != 0 {
			t.Errorf("err %v after %d attempts and %d looks at the pause; want ErrRateLimited, no attempt", err, s.numCalls(), store.asked.Load())
		}
	})
}

// TestFarStorePauseAfterAWaitIsRefusedWithoutABudget is
// TestFarStorePauseAfterAWaitIsRefused for a call without a budget
// (WithMaxElapsed(0)) nor a deadline, whose wait nothing else bounds: the
// default budget of 5 minutes refused the saturated wait as past it, and
// without one, the wait held plus the pause's overflowed to a negative
// wait, on whose timers of no time the attempt spun.
func TestFarStorePauseAfterAWaitIsRefusedWithoutABudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		store := &farPausePart{switchAt: time.Now().Add(100 * time.Millisecond), cancel: cancel}
		s := &rtScript{steps: []rtStep{{status: 200}}}
		tr := New(s, WithQuotaStore(store), WithMaxRetries(0), WithMaxElapsed(0))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, http.MethodGet, "http://api.test/", nil))
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrRateLimited) || s.numCalls() != 0 {
			t.Errorf("err %v after %d attempts and %d looks at the pause; want ErrRateLimited, no attempt", err, s.numCalls(), store.asked.Load())
		}
	})
}
