package resilient_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// dryPausingStore is a QuotaStore whose one partition never has a token to
// give (Take refuses, to be asked again after retry), and whose fleet is
// paused for pause at the end of every period of every, from start: the
// other members' 429s, short ones, one after another.
type dryPausingStore struct {
	start               time.Time
	every, pause, retry time.Duration
	takes               atomic.Int64
}

func (s *dryPausingStore) Partition(string) resilient.QuotaPartition { return dryPausingPart{s} }

type dryPausingPart struct{ s *dryPausingStore }

func (p dryPausingPart) Take(time.Time) (time.Duration, bool, <-chan struct{}) {
	p.s.takes.Add(1)
	return p.s.retry, false, nil
}

func (p dryPausingPart) PauseUntil() time.Time {
	s := p.s
	e := time.Since(s.start)
	next := (e/s.every + 1) * s.every
	if next-e <= s.pause {
		return s.start.Add(next)
	}
	return time.Time{}
}

func (dryPausingPart) Pause(time.Time)                              {}
func (dryPausingPart) Learn(resilient.RateLimitInfo, time.Duration) {}

// dryPausingTaker is dryPausingPart told by when the attempt must start
// (QuotaDeadlineTaker), which it ignores: it has no token before then
// either.
type dryPausingTaker struct{ dryPausingPart }

func (p dryPausingTaker) TakeBefore(now, _ time.Time) (time.Duration, bool, <-chan struct{}) {
	return p.Take(now)
}

type dryPausingTakerStore struct{ *dryPausingStore }

func (s dryPausingTakerStore) Partition(string) resilient.QuotaPartition {
	return dryPausingTaker{dryPausingPart{s.dryPausingStore}}
}

// TestBoundsDryStoreBetweenShortPausesBoundedByMaxRetryAfter: a QuotaStore
// that has no token to give, between short pauses of the fleet one after
// another, holds an attempt no longer than a server may ask to wait
// (WithMaxRetryAfter) in all, as the pauses and spent quotas it waits for
// in turn are (with the reset's spread, and the tenth of it an attempt may
// wait for the store's token after a pause: see WithMaxRetryAfter); then
// the attempt is refused with ErrRateLimited, and nothing is sent. Its
// store's refusals were counted anew after each pause: with a pause every
// 100s, the attempt waited 299s of the hour's budget, for a bound of 2m.
func TestBoundsDryStoreBetweenShortPausesBoundedByMaxRetryAfter(t *testing.T) {
	const maxWait = 2 * time.Minute
	bound := maxWait + min(maxWait/10, time.Second) + maxWait/10
	for _, tc := range []struct {
		name  string
		every time.Duration // a pause at the end of every period; 0 for none
		taker bool          // the partition implements QuotaDeadlineTaker
	}{
		{"no pause", 0, false},
		{"pause every 100s", 100 * time.Second, false},
		{"pause every 30s", 30 * time.Second, false},
		{"pause every 100s, TakeBefore", 100 * time.Second, true},
		{"pause every 30s, TakeBefore", 30 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				every := tc.every
				if every == 0 {
					every = 1000 * time.Hour
				}
				ds := &dryPausingStore{start: time.Now(), every: every, pause: time.Second, retry: time.Second}
				var store resilient.QuotaStore = ds
				if tc.taker {
					store = dryPausingTakerStore{ds}
				}
				var sent atomic.Int64
				base := chaosRoundTripFunc(func(req *http.Request) (*http.Response, error) {
					sent.Add(1)
					return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
				})
				var localWait time.Duration
				tr := resilient.New(base, resilient.WithQuotaStore(store), resilient.WithMaxRetryAfter(maxWait),
					resilient.WithMaxElapsed(time.Hour), resilient.WithoutBreaker(),
					resilient.WithObserver(func(a resilient.Attempt) { localWait += a.LocalWait }))
				var rep resilient.Report
				ctx := resilient.WithReport(context.Background(), &rep)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/posts", nil)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				took := time.Since(start)
				if resp != nil {
					resp.Body.Close()
				}
				if !errors.Is(err, resilient.ErrRateLimited) || resp != nil {
					t.Errorf("RoundTrip = %v, %v, want nil, ErrRateLimited", resp, err)
				}
				if took > bound {
					t.Errorf("RoundTrip returned after %v, want within %v (WithMaxRetryAfter(%v), its spread and a tenth of it); %d Takes; report %+v",
						took, bound, maxWait, ds.takes.Load(), rep)
				}
				if localWait > bound {
					t.Errorf("LocalWait = %v, want at most %v", localWait, bound)
				}
				if n := sent.Load(); n != 0 {
					t.Errorf("requests sent = %d, want 0", n)
				}
			})
		})
	}
}
