package resilient

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitOlderAnswerRaisesNoCount: an answer that arrives after a
// newer one of the same window (a slow call's, sent first, that announces
// 3 left and a reset at 11s) does not raise the count the newer one
// announced (none left until 21s): the next call waits for the reset, not
// sent at once into a spent quota on the word of the older answer.
func TestRateLimitOlderAnswerRaisesNoCount(t *testing.T) {
	slowAnswerThenFast(t, func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Remaining", "3")
		w.Header().Set("X-RateLimit-Reset", "10") // at 11s
	}, func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", "21") // at 21s
	}, 21*time.Second, "the newer answer's reset")
}

// TestRateLimitSlowAnswerOfTheWindowRaisesNoCount: a slow call sent first
// (at 0), whose answer the server made before that of a call sent at
// 100ms (which says none left, the window resetting in 20s: at 20.1s),
// arrives at 1s saying 3 left and a reset in 20s, as the server counted
// it at 0: read when it arrives, its reset is at 21s, later than the
// newer answer's by its delay alone. It is of the same window, and does
// not raise the count: the next call waits for the reset. It started a
// new window of 3 left, and the next call went at once into a spent quota.
func TestRateLimitSlowAnswerOfTheWindowRaisesNoCount(t *testing.T) {
	slowAnswerThenFast(t, func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Remaining", "3")
		w.Header().Set("X-RateLimit-Reset", "20") // at 21s, read at 1s
	}, func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", "20") // at 20.1s
	}, 20100*time.Millisecond, "the reset of the newer answer's window")
}

// slowAnswerThenFast sends a call to api.test answered after a second by
// slow, and 100ms after it a call answered at once by fast; it then checks that
// the next call to the host arrives at want or later (why says what
// holds it).
func slowAnswerThenFast(t *testing.T, slow, fast func(w http.ResponseWriter), want time.Duration, why string) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			switch r.URL.Path {
			case "/slow":
				time.Sleep(time.Second)
				slow(w)
			case "/fast":
				fast(w)
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/slow") })
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		do(t, client, "GET", "http://api.test/fast")
		wg.Wait()
		if _, err := do(t, client, "GET", "http://api.test/next"); err != nil {
			t.Fatal(err)
		}
		a := srv.seen("/next")
		if len(a) != 1 {
			t.Fatalf("the next call reached the server %d times, want once", len(a))
		}
		if at := a[0].at.Sub(t0); at < want {
			t.Errorf("the next call arrived at %v, want %v or later (%s)", at, want, why)
		}
	})
}

// TestRateLimitOtherLimitSpentHolds: a server that announces two limits
// of the same route, the nearer to running out of an hourly quota (1000,
// 500 left, reset in 3000s) and a burst limit (10, none left, reset in
// 10s), holds the next call until the burst limit's reset: its none left
// is not dropped as an older window of the hourly quota.
func TestRateLimitOtherLimitSpentHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			limit, remaining, reset := "10", "0", "10"
			if n == 0 {
				limit, remaining, reset = "1000", "500", "3000"
			}
			w.Header().Set("X-RateLimit-Limit", limit)
			w.Header().Set("X-RateLimit-Remaining", remaining)
			w.Header().Set("X-RateLimit-Reset", reset)
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		for range 3 {
			if _, err := do(t, client, "GET", "http://api.test/x"); err != nil {
				t.Fatal(err)
			}
		}
		if at := srv.seen("")[2].at.Sub(t0); at < 10*time.Second {
			t.Errorf("third call arrived at %v, want 10s or later (the burst limit's reset)", at)
		}
	})
}

// TestRateLimitOutageWithQuotaLeftPausesNothing: a 503 that announces a
// quota with requests left (10 left until a reset in 30s) and no
// Retry-After is an outage, not a spent quota: the next call goes at
// once, not held until the reset.
func TestRateLimitOutageWithQuotaLeftPausesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Remaining", "10")
			w.Header().Set("X-RateLimit-Reset", "30")
			if n == 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		if code, _ := do(t, client, "GET", "http://api.test/"); code != http.StatusServiceUnavailable {
			t.Fatalf("first call: %d, want 503", code)
		}
		if code, err := do(t, client, "GET", "http://api.test/"); code != http.StatusOK {
			t.Fatalf("second call: %d, %v; want 200", code, err)
		}
		if d := time.Since(t0); d != 0 {
			t.Errorf("the second call returned after %v, want at once", d)
		}
	})
}

// TestRateLimitStaticBurstBoundsTheLearned: WithRateLimit(5, 1) caps the
// burst of a pace learned from the server (a quota of 100 a second, 3
// remaining), as it caps its rate: after a second without calls, three
// calls go one every 200ms, not the three at once that the announced
// remaining count allows.
func TestRateLimitStaticBurstBoundsTheLearned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("RateLimit", `"p";r=3;t=1`)
			w.Header().Set("RateLimit-Policy", `"p";q=100;w=1`)
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(5, 1))}
		do(t, client, "GET", "http://api.test/") // learn
		time.Sleep(time.Second)
		for range 3 {
			do(t, client, "GET", "http://api.test/")
		}
		s := srv.seen("")[1:]
		for i := 1; i < len(s); i++ {
			if gap := s[i].at.Sub(s[i-1].at); gap != 200*time.Millisecond {
				t.Errorf("gap before call %d = %v, want 200ms (a burst of 1)", i+1, gap)
			}
		}
	})
}

// TestRateLimitStaticHoldsWhenTheLearnedPaceRises: WithRateLimit(2, 1)
// keeps the host's requests half a second apart when the pace learned from
// the server (0.95 a second, announced at 0.5s) rises back to the static
// one (a quota of 100 a second, announced at 2s) while a call waits for a
// turn of the slower pace (due at 2.6s): its turn comes at the new rate,
// ahead of those given after the rise, and the next call (made at 2.5s)
// arrives half a second after it, not 0.18s.
func TestRateLimitStaticHoldsWhenTheLearnedPaceRises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			switch r.URL.Path {
			case "/slow":
				time.Sleep(2 * time.Second)
				w.Header().Set("RateLimit-Limit", "100, 100;w=1")
				w.Header().Set("RateLimit-Remaining", "50")
			case "/learn":
				w.Header().Set("RateLimit-Limit", "10, 10;w=10")
				w.Header().Set("RateLimit-Remaining", "5")
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(2, 1))}
		var wg sync.WaitGroup
		wg.Go(func() { do(t, client, "GET", "http://api.test/slow") }) // at 0
		synctest.Wait()
		do(t, client, "GET", "http://api.test/learn") // at 0.5s
		for _, pause := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond} {
			time.Sleep(pause) // calls at 0.5s, 1s and 2.5s
			wg.Go(func() { do(t, client, "GET", "http://api.test/") })
			synctest.Wait()
		}
		wg.Wait()
		s := srv.seen("")
		for i := 1; i < len(s); i++ {
			if gap := s[i].at.Sub(s[i-1].at); gap < 500*time.Millisecond {
				t.Errorf("gap before request %d (%s) = %v, want 500ms or more (WithRateLimit(2, 1))", i+1, s[i].path, gap)
			}
		}
	})
}

// TestRateLimitShorterPauseKeepsTheLonger: a 429 whose Retry-After (5s)
// ends before the pause an earlier answer set (30s) does not shorten it:
// the next call waits the 30s.
func TestRateLimitShorterPauseKeepsTheLonger(t *testing.T) {
	slowAnswerThenFast(t, func(w http.ResponseWriter) {
		throttle(w, "5") // until 6s
	}, func(w http.ResponseWriter) {
		throttle(w, "30") // until 30s
	}, 30*time.Second, "the longer pause")
}

// TestRateLimitIdlePartitionKeepsItsPause: a partition paused for 30
// minutes by a 429 that announced its reset alone (no Retry-After, no
// remaining count) is not dropped as idle after 10 minutes without calls:
// the pause still holds the host's next call, which would otherwise be
// sent into it.
func TestRateLimitIdlePartitionKeepsItsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Host == "a.test" && n == 0 {
				w.Header().Set("X-RateLimit-Reset", "1800")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		if code, _ := do(t, client, "GET", "http://a.test/"); code != http.StatusTooManyRequests {
			t.Fatalf("first call: %d, want 429", code)
		}
		time.Sleep(11 * time.Minute)
		do(t, client, "GET", "http://b.test/") // a lookup that drops idle partitions
		_, err := do(t, client, "GET", "http://a.test/")
		if !errors.Is(err, ErrRateLimited) {
			t.Errorf("a.test's call 11 minutes into its 30-minute pause: err = %v, want ErrRateLimited", err)
		}
		if n := len(srv.seen("")); n != 2 {
			t.Errorf("the server saw %d calls, want 2 (a.test's first, b.test's)", n)
		}
	})
}
