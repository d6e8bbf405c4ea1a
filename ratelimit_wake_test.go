package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestResetHostWakesTurnWaiters checks that ResetHost wakes an attempt
// waiting for its turn of the pace the server's quota set (100 an hour:
// a turn every 37.9s), as its doc says of every attempt waiting for the
// host's rate limit: that pace is forgotten, and the attempt goes at once.
// It slept on to the turn of the pace ResetHost had forgotten.
func TestResetHostWakesTurnWaiters(t *testing.T) {
	resetHostWakesWaiter(t, nil)
}

// TestResetHostWakesStoreTokenWaiters checks the same of an attempt
// waiting for the turn of a token its QuotaStore held for it (the fleet's
// pace of 100 an hour), when the store's partitions implement
// QuotaResetter: Reset clears that pace, and the attempt goes at once.
func TestResetHostWakesStoreTokenWaiters(t *testing.T) {
	resetHostWakesWaiter(t, new(memQuota))
}

// resetHostWakesWaiter learns a pace of 100 an hour at https://api.test
// (shared through mem, nil for none), empties its burst, starts an attempt
// that waits for its turn, calls ResetHost a second later and checks that
// the attempt is sent then.
func resetHostWakesWaiter(t *testing.T, mem *memQuota) {
	synctest.Test(t, func(t *testing.T) {
		var log sendLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			log.add(time.Now())
			return &http.Response{StatusCode: http.StatusOK, Header: quotaHeader(100), Body: http.NoBody, Request: r}, nil
		})
		opts := []Option{WithMaxRetries(0)}
		if mem != nil {
			opts = append(opts, WithQuotaStore(mem))
		}
		tr := New(base, opts...)
		const host = "https://api.test"
		for range 2 { // the first learns the pace (a burst of 1), the second takes its token
			if err := getClosed(t, tr, host+"/a"); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		callAt(t, &wg, tr, host+"/w", 0, 0, errs) // waits for its turn, at 37.9s
		synctest.Wait()
		if n := len(log.times()); n != 2 {
			t.Fatalf("%d requests before ResetHost, want 2", n)
		}
		time.Sleep(time.Second)
		tr.ResetHost("api.test")
		wg.Wait()
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if mem != nil {
			if p := mem.part("https://api.test reads"); p == nil || p.resets != 1 {
				t.Fatal("the store's partition was not reset once")
			}
		}
		if sends := log.times(); len(sends) != 3 {
			t.Errorf("%d requests, want 3", len(sends))
		} else if at := sends[2].Sub(start); at != time.Second {
			t.Errorf("the waiting attempt was sent at %v, want 1s (at ResetHost)", at)
		}
	})
}

// TestRateLimitEarlierRetryAfterWakesQuotaWaiters: a call waits for the
// reset of a quota its host announced (one left, at 50s) that a call in
// flight holds; that call's answer, at 1s, is a 429 whose Retry-After
// says the quota is back in 5s (Retry-After wins over the reset: the
// window is over when the pause is). The waiting call wakes to it and goes
// at 6s, as a call that starts then does. It slept on to the reset
// forgotten, at 50s.
func TestRateLimitEarlierRetryAfterWakesQuotaWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			switch r.URL.Path {
			case "/learn":
				w.Header().Set("X-RateLimit-Limit", "10")
				w.Header().Set("X-RateLimit-Remaining", "1")
				w.Header().Set("X-RateLimit-Reset", "50")
			case "/held":
				time.Sleep(time.Second)
				throttle(w, "5")
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		do(t, client, "GET", "http://api.test/learn")
		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/held") })
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		if code, err := do(t, client, "GET", "http://api.test/next"); code != http.StatusOK {
			t.Errorf("the waiting call: %d, %v; want 200", code, err)
		}
		wg.Wait()
		a := srv.seen("/next")
		if len(a) != 1 {
			t.Fatalf("the waiting call reached the server %d times, want once", len(a))
		}
		// The pause's end, and its spread: a tenth of the wait from 1s.
		if at, latest := a[0].at.Sub(t0), 6500*time.Millisecond; at < 6*time.Second || at > latest {
			t.Errorf("the waiting call arrived at %v, want from 6s to %v (the end of the 429's pause)", at, latest)
		}
	})
}
