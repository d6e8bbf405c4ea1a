package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitUnpaceOtherLimitWakesWaiters: a host announced its policy,
// 60 requests in 50 minutes, 1 left: a turn every 53 seconds. Call A
// takes the turn; call B, a second later, waits for the next one. A's
// answer, late, announces another limit (5000) without a window or a
// reset: the old limit's pace is forgotten (unpace), and nothing paces the
// host. B, which waited for a turn of that pace, goes then, as a call made
// after the answer does (and a plain client's), not at the turn of a pace
// no longer known, up to WithMaxRetryAfter later.
func TestRateLimitUnpaceOtherLimitWakesWaiters(t *testing.T) {
	checkLateAnswerWakesWaiter(t, func(h http.Header, path string, n int) {
		if path == "/a" {
			h.Set("RateLimit-Limit", "5000")
			h.Set("RateLimit-Remaining", "4999")
			return
		}
		h.Set("RateLimit-Limit", "60")
		h.Set("RateLimit-Remaining", "1")
		h.Set("RateLimit-Policy", "60;w=3000")
	}, func(t *testing.T, client *http.Client) {
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("first call: %d, %v", code, err)
		}
	})
}

// checkLateAnswerWakesWaiter runs, in a synctest bubble, the race of the
// tests of a pace that a late answer makes no longer known, over a host
// whose answers carry the headers set sets (of the request to path, the
// server's n-th, from 0). Once warm returned (the calls that taught the
// host its pace, over client), call A (GET /a) takes the turn of that
// pace; call B (GET /b), a second later, waits for the next one. A's
// answer, 5 s late, makes the pace no longer known: B must be sent at it,
// as a call made after the answer is (and a plain client's), not at the
// turn of a pace no longer known.
func checkLateAnswerWakesWaiter(t *testing.T, set func(h http.Header, path string, n int), warm func(t *testing.T, client *http.Client)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var answered time.Time // when A's answer came
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Path == "/a" {
				time.Sleep(5 * time.Second)
			}
			set(w.Header(), r.URL.Path, n)
			if r.URL.Path == "/a" {
				mu.Lock()
				answered = time.Now()
				mu.Unlock()
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		warm(t, client)
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := do(t, client, "GET", "http://api.test/a"); code != 200 || err != nil {
				t.Errorf("A: %d, %v", code, err)
			}
		})
		time.Sleep(time.Second)
		sent := time.Now()
		if code, err := do(t, client, "GET", "http://api.test/b"); code != 200 || err != nil {
			t.Fatalf("B: %d, %v", code, err)
		}
		wg.Wait()
		b := srv.seen("/b")
		mu.Lock()
		defer mu.Unlock()
		if len(b) != 1 || b[0].at.After(answered) {
			t.Errorf("B, called %v before A's answer forgot the pace, sent %v after it (%d sent); want at it", answered.Sub(sent), b[len(b)-1].at.Sub(answered), len(b))
		}
	})
}

// TestRateLimitUnpaceSilenceWakesWaiters: a host announced its policy, 60
// requests in 50 minutes, 1 left, and then nothing for more than an
// hour. Call W1 takes the turn of the pace; call W2, a second later, waits
// for the next one, 53 seconds away. Call X, made once no response has
// announced the quota for MaxBelievedReset, forgets its pace (unpace) and
// goes at once. W2, which waited for a turn of that pace, goes then too, as
// a plain client's call would, not at the turn of a pace no longer known.
func TestRateLimitUnpaceSilenceWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				w.Header().Set("RateLimit-Limit", "60")
				w.Header().Set("RateLimit-Remaining", "1")
				w.Header().Set("RateLimit-Policy", "60;w=3000")
			}
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("first call: %d, %v", code, err)
		}
		time.Sleep(MaxBelievedReset - 20*time.Second)
		if code, err := do(t, client, "GET", "http://api.test/w1"); code != 200 || err != nil {
			t.Fatalf("W1: %d, %v", code, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if code, err := do(t, client, "GET", "http://api.test/w2"); code != 200 || err != nil {
				t.Errorf("W2: %d, %v", code, err)
			}
		})
		time.Sleep(21 * time.Second)
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
			t.Fatalf("X: %d, %v", code, err)
		}
		wg.Wait()
		w2, x := srv.seen("/w2"), srv.seen("/x")
		if len(w2) != 1 || len(x) != 2 || w2[0].at.After(x[1].at) {
			t.Errorf("W2 sent %v after X, which forgot the pace (%d sent); want at it", w2[len(w2)-1].at.Sub(x[len(x)-1].at), len(w2))
		}
	})
}
