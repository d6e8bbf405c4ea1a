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
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		release := make(chan struct{})
		tr := holdingPacedTransport(&log, release)
		start := time.Now()
		var wg sync.WaitGroup
		callAt(t, &wg, tr, "https://a.test/hold", 0, 0, nil) // holds a.test's slot
		errs := make(chan error, 1)
		callAt(t, &wg, tr, "https://a.test/c", time.Millisecond, 1500*time.Millisecond, errs)
		callAt(t, &wg, tr, "https://b.test/d", time.Second, 0, nil)
		callAt(t, &wg, tr, "https://c.test/e", time.Second, 0, nil)
		callAt(t, &wg, tr, "https://d.test/f", 1501*time.Millisecond, 0, nil)
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
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/hold" {
			<-release
		} else {
			log.add(time.Now())
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	return New(base, WithMaxRetries(0), WithMaxInFlight(1), WithRateLimit(1, 2), WithRateLimitKey(func(r *http.Request) string {
		if r.URL.Path == "/hold" {
			return "" // not paced
		}
		return "api"
	}))
}
