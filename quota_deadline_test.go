package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// deadlineQuota is a QuotaStore whose partitions implement
// QuotaDeadlineTaker, as a store waiting for its backend does: no token
// for 5s (the backend has not answered), except for an attempt whose
// deadline comes first, which it paces locally at once; the next token
// after a refusal is given. It records the deadlines it was given.
type deadlineQuota struct {
	mem memQuota

	mu        sync.Mutex
	deadlines []time.Time
	refused   bool // a token was refused: the next one is given
}

func (q *deadlineQuota) Partition(name string) QuotaPartition {
	return deadlinePart{memPart: q.mem.Partition(name).(*memPart), q: q}
}

type deadlinePart struct {
	*memPart
	q *deadlineQuota
}

func (p deadlinePart) TakeBefore(now, deadline time.Time) (time.Duration, bool, <-chan struct{}) {
	p.q.mu.Lock()
	defer p.q.mu.Unlock()
	p.q.deadlines = append(p.q.deadlines, deadline)
	if p.memPart.lim == nil {
		return 0, true, nil // no quota known yet
	}
	if wait := 5 * time.Second; p.q.refused || !deadline.IsZero() && !now.Add(wait).Before(deadline) {
		return 0, true, nil // the backend answered, or the attempt cannot wait for it
	}
	p.q.refused = true
	return 5 * time.Second, false, nil
}

// TestQuotaStoreTakeBefore proves that the rate limiter tells a store whose
// partitions implement QuotaDeadlineTaker by when the attempt must start:
// the context's deadline or the call's budget (WithMaxElapsed), less the
// 1ms any attempt needs (see attemptState.latestStart), or the end of
// the longest wait for a token (the call's WithMaxRetryAfter), whichever
// comes first; and that an attempt the store paces at once for it is sent,
// where Take's wait, past the deadline or that longest wait, would have
// refused it (a call made WithMaxRetryAfter(0) to a store still waiting for
// its backend was refused, never sent).
func TestQuotaStoreTakeBefore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ctx      time.Duration // the context's deadline; 0 for none
		elapsed  time.Duration // WithMaxElapsed
		want     time.Duration // the deadline told, from the call's start; 0 for none, -1 for the start itself
		wantWait time.Duration // how long the call waits for its token
		perCall  []Option      // the call's options (WithCallOptions)
	}{
		{"context first", time.Second, time.Minute, time.Second - durationFloor, 0, nil},
		{"budget first", time.Minute, 2 * time.Second, 2*time.Second - durationFloor, 0, nil},
		{"longest wait first", time.Minute, time.Minute, time.Second, 0, []Option{WithMaxRetryAfter(time.Second)}},
		{"no wait for a server", 0, 0, -1, 0, []Option{WithMaxRetryAfter(0)}},
		{"no deadline but the longest wait", 0, 0, DefaultMaxRetryAfter, 5 * time.Second, nil},
		{"deadline beyond the wait", time.Minute, time.Minute, time.Minute - durationFloor, 5 * time.Second, nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 100, ResetFormat: resilienttest.IETF}))
			defer srv.Close()
			store := new(deadlineQuota)
			tr := New(srv.Transport(), WithQuotaStore(store), WithMaxRetries(0), WithMaxElapsed(tc.elapsed))
			url := srv.URL + "/v1/usage"
			get(t, tr, url) // the quota learned
			store.mu.Lock()
			store.deadlines = nil
			store.mu.Unlock()
			ctx := context.Background()
			if tc.perCall != nil {
				ctx = WithCallOptions(ctx, tc.perCall...)
			}
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			start := time.Now()
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, url, nil))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			readBody(t, resp)
			if d := time.Since(start); d != tc.wantWait {
				t.Errorf("%s: the call waited %v, want %v", tc.name, d, tc.wantWait)
			}
			store.mu.Lock()
			got := store.deadlines
			store.mu.Unlock()
			if len(got) == 0 {
				t.Fatalf("%s: TakeBefore never called", tc.name)
			}
			want := time.Time{}
			switch {
			case tc.want > 0:
				want = start.Add(tc.want)
			case tc.want < 0: // at once
				want = start
			}
			if !got[0].Equal(want) {
				t.Errorf("%s: deadline told %v after the start, want %v", tc.name, got[0].Sub(start), tc.want)
			}
			if n := srv.Stats().Requests; n != 2 {
				t.Errorf("%s: server saw %d requests, want 2", tc.name, n)
			}
		})
	}
}

// scheduleQuota is a QuotaStore whose partitions implement
// QuotaDeadlineTaker as redisquota's do: the fleet's next token conforms
// at next, one every every after it, and a token that conforms only at or
// after the attempt's deadline is left for the next attempt (not ok, with
// its wait). It counts the tokens it handed out.
type scheduleQuota struct {
	mem memQuota

	mu        sync.Mutex
	next      time.Time // zero: no quota known, every attempt goes unpaced
	every     time.Duration
	taken     int
	deadlines []time.Time
}

func (q *scheduleQuota) Partition(name string) QuotaPartition {
	return schedulePart{memPart: q.mem.Partition(name).(*memPart), q: q}
}

type schedulePart struct {
	*memPart
	q *scheduleQuota
}

func (p schedulePart) TakeBefore(now, deadline time.Time) (time.Duration, bool, <-chan struct{}) {
	q := p.q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadlines = append(q.deadlines, deadline)
	if q.next.IsZero() {
		return 0, true, nil
	}
	c := q.next
	if c.Before(now) {
		c = now
	}
	if c.After(now) && !deadline.IsZero() && !c.Before(deadline) {
		return c.Sub(now), false, nil // left for the next attempt
	}
	q.taken++
	q.next = c.Add(q.every)
	return c.Sub(now), true, nil
}

// TestQuotaStoreTokenPastBoundInAllNotTaken proves that an attempt that
// waited out a pause tells its store the end of the bound of the server's
// waits in all (WithMaxRetryAfter, counted from when the pause first held
// it), not maxWait from the end of the pause: a store that leaves a token
// past the deadline to the next attempt then keeps the fleet's token that
// the Transport would refuse the attempt for, and the next call gets it.
// (Told maxWait from the end of the pause, the store reserved the token
// for an attempt the Transport then refused past its bound in all: a token
// of the fleet's quota spent on nothing, and the next call waited for the
// one after it.)
func TestQuotaStoreTokenPastBoundInAllNotTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"50"}}, Body: http.NoBody, Request: r}, nil
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		store := new(scheduleQuota)
		tr := New(base, WithQuotaStore(store), WithMaxRetries(0), WithoutRetryBudget())
		const url = "https://api.example.com/v1/items"
		start := time.Now()
		if code := get(t, tr, url); code != http.StatusTooManyRequests {
			t.Fatalf("first call: %d, want 429", code)
		}
		// The fleet's next token comes 15s after the pause's end: past
		// the bound in all (60s) of a call held by the whole pause.
		store.mu.Lock()
		store.next, store.every = start.Add(65*time.Second), 10*time.Second
		store.mu.Unlock()
		_, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, url, nil))
		if !errors.Is(err, ErrRateLimited) {
			t.Fatalf("the call held by the pause: %v, want ErrRateLimited (65s in all past 60s)", err)
		}
		store.mu.Lock()
		taken, deadlines := store.taken, slices.Clone(store.deadlines)
		store.mu.Unlock()
		if taken != 0 {
			t.Errorf("the call refused past its bound in all took %d tokens of the fleet's quota (deadlines told %v after the start), want 0", taken, sinceAll(start, deadlines))
		}
		// The next call gets the token the refused one left.
		t0 := time.Now()
		if code := get(t, tr, url); code != http.StatusOK {
			t.Fatalf("next call: %d, want 200", code)
		}
		if at := t0.Sub(start) + time.Since(t0); at != 65*time.Second {
			t.Errorf("next call sent %v after the start, want 65s (the token the refused call left)", at)
		}
	})
}

// sinceAll returns each of ts less start.
func sinceAll(start time.Time, ts []time.Time) []time.Duration {
	var ds []time.Duration
	for _, t := range ts {
		ds = append(ds, t.Sub(start))
	}
	return ds
}
