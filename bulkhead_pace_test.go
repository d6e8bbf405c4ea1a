package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// This file checks that an attempt refused at the end of its wait for a
// slot of WithMaxInFlight gives back its token of the rate limiter's pace
// only while the token is still worth one.

// TestSlotWaitRefusedGivesBackNoStaleToken checks that the token of the
// pace (one a second, burst 2) of an attempt refused at the end of its
// wait for a slot is not given back once the bucket needed its room: it
// took it at 1ms from a full bucket, which refilled to nearly full while
// it waited, and given back at 1.5s after two other calls took the
// bucket's tokens at 1s, it let a third go at 1.501s: 3 requests in 0.5s
// where 2.5 are allowed. (A token whose room the bucket never needed is
// given back: TestRefusedBelowSpendsNoPace.) The calls go to hosts of
// their own (their slots apart), paced as one by WithRateLimitKey.
func TestSlotWaitRefusedGivesBackNoStaleToken(t *testing.T) {
	slotWaitRefusedKeepsThePace(t, 1500*time.Millisecond, time.Second)
}

// slotWaitRefusedKeepsThePace checks that a call waiting for a slot of
// a.test from 1ms, with its token of the pace (one a second, burst 2), and
// refused at refusedAt, gives back no token the bucket has no room for:
// two calls to other hosts paced as one go at two, and a third at
// refusedAt+1ms, and the three are sent within the pace.
func slotWaitRefusedKeepsThePace(t *testing.T, refusedAt, two time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		release := make(chan struct{})
		tr := holdingPacedTransport(&log, release)
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://a.test/hold", 0, 0, nil) // holds a.test's slot
		errs := make(chan error, 1)
		callAt(t, &wg, tr, "https://a.test/c", time.Millisecond, refusedAt, errs)
		callAt(t, &wg, tr, "https://b.test/d", two, 0, nil)
		callAt(t, &wg, tr, "https://c.test/e", two, 0, nil)
		callAt(t, &wg, tr, "https://d.test/f", refusedAt+time.Millisecond, 0, nil)
		if err := <-errs; !errors.Is(err, ErrTooManyInFlight) {
			t.Errorf("the call that waited for a.test's slot: err = %v, want ErrTooManyInFlight", err)
		}
		time.Sleep(3 * time.Second)
		close(release)
		wg.Wait()
		sends := log.times()
		if len(sends) != 3 {
			t.Fatalf("the calls were sent at %v, want 3 of them", offsets(sends, start))
		}
		if v := passedPace(sends, 1, 2, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}

// TestSlotWaitCanceledGivesBackItsToken checks that an attempt whose
// caller gives up while it waits for a slot of WithMaxInFlight gives back
// its token of the pace (one a second, burst 2), as one refused at the end
// of the wait does, and as a wait canceled in the rate limiter gives back
// its turn: nothing was sent on it. It took the bucket's second token at
// 1ms, when the first was spent, and its wait was canceled at 500ms; kept,
// it held the next call, to another host paced as one, until 1s. The
// calls go to hosts of their own (their slots apart), paced as one by
// WithRateLimitKey.
func TestSlotWaitCanceledGivesBackItsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		release := make(chan struct{})
		tr := holdingPacedTransport(&log, release)
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://a.test/hold", 0, 0, nil) // holds a.test's slot
		callAt(t, &wg, tr, "https://b.test/first", 0, 0, nil)
		ctx, cancel := context.WithCancel(context.Background())
		wg.Go(func() {
			time.Sleep(time.Millisecond)
			if _, err := tr.RoundTrip(newRequest(t, ctx, "GET", "https://a.test/c", nil)); !errors.Is(err, context.Canceled) {
				t.Errorf("the call that waited for a.test's slot: err = %v, want context.Canceled", err)
			}
		})
		time.Sleep(500 * time.Millisecond)
		cancel()
		synctest.Wait()
		if _, err := getIn(t, tr, context.Background(), "https://c.test/d"); err != nil {
			t.Fatal(err)
		}
		close(release)
		wg.Wait()
		sends := log.times()
		if got, want := offsets(sends, start), []time.Duration{0, 500 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("sent at %v, want %v: the canceled wait's token given back", got, want)
		}
		if v := passedPace(sends, 1, 2, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}

// holdingPacedTransport returns a Transport with one slot per host
// (WithMaxInFlight(1)) and one pace for every host, one a second with a
// burst of 2 (WithRateLimitKey), whose base records in log when each call
// is sent, but for calls to /hold: those are not paced, and hold their
// host's slot until release is closed.
func holdingPacedTransport(log *sendLog, release <-chan struct{}) *Transport {
	return holdingPacedTransportBurst(log, release, 2)
}

// holdingPacedTransportBurst is holdingPacedTransport with a burst of
// burst.
func holdingPacedTransportBurst(log *sendLog, release <-chan struct{}, burst int) *Transport {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/hold" {
			<-release
		} else {
			log.add(time.Now())
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	return New(base, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, burst), WithRateLimitKey(func(r *http.Request) string {
		if r.URL.Path == "/hold" {
			return "" // not paced
		}
		return "api"
	}))
}

// TestSlotWaitRefusedBeforeTheCapKeepsThePace checks the bound of
// TestSlotWaitRefusedGivesBackNoStaleToken where the bucket (one a second,
// burst 2) was not full yet: the attempt took its token at 1ms, leaving
// one, and was refused at 950ms, when the bucket held 1.95 without it, or
// 2.95 with it had it not been taken, past the burst. Had it never been
// taken, the bucket would have been full from 1ms and lost what refilled;
// given back whole once a call took a token at 900ms and another reserved
// the next turn, it let a call go at 951ms: 3 requests in 0.1s, where 2.1
// are allowed.
func TestSlotWaitRefusedBeforeTheCapKeepsThePace(t *testing.T) {
	slotWaitRefusedKeepsThePace(t, 950*time.Millisecond, 900*time.Millisecond)
}

// TestSlotWaitRefusedCountsTheTokensOwed checks that the tokens of the
// pace (one a second, burst 3) an attempt finds when it starts waiting for
// a slot include those given back and owed: an attempt refused at 2ms gave
// its token back, owed; another took the bucket's own token at 1.5s, the
// owed one left, and was refused at 2.5s, once a call at 2.4s took the
// bucket's refill. Counted without the token owed, the bucket seemed to
// have had room for the refused token, given back then: two calls went at
// 2.501s and a third at 3s, 4 requests in 0.6s where 3.6 are allowed.
func TestSlotWaitRefusedCountsTheTokensOwed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		release := make(chan struct{})
		tr := holdingPacedTransportBurst(&log, release, 3)
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://a.test/hold", 0, 0, nil) // holds a.test's slot
		callAt(t, &wg, tr, "https://b.test/x", 500*time.Microsecond, 0, nil)
		callAt(t, &wg, tr, "https://c.test/x", 500*time.Microsecond, 0, nil)
		errs := make(chan error, 2)
		callAt(t, &wg, tr, "https://a.test/c1", time.Millisecond, 2*time.Millisecond, errs)
		callAt(t, &wg, tr, "https://a.test/c2", 1500*time.Millisecond, 2500*time.Millisecond, errs)
		callAt(t, &wg, tr, "https://e.test/y", 2400*time.Millisecond, 0, nil)
		for _, host := range []string{"f", "g", "h"} {
			callAt(t, &wg, tr, "https://"+host+".test/z", 2501*time.Millisecond, 0, nil)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, ErrTooManyInFlight) {
				t.Errorf("a call that waited for a.test's slot: err = %v, want ErrTooManyInFlight", err)
			}
		}
		time.Sleep(5 * time.Second)
		close(release)
		wg.Wait()
		sends := log.times()
		if len(sends) != 6 {
			t.Fatalf("the calls were sent at %v, want 6 of them", offsets(sends, start))
		}
		if v := passedPace(sends, 1, 3, start); v != "" {
			t.Errorf("%s (sent at %v)", v, offsets(sends, start))
		}
	})
}
