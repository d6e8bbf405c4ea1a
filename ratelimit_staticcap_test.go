package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitStaticPaceUnderALearnedQuotaNotBoundedByMaxRetryAfter: a
// server that announces a quota far above the caller's WithRateLimit does
// not turn the turns of the caller's own pace, which still binds, into
// waits the server set: one further ahead than WithMaxRetryAfter, within
// the call's budget, is waited for, as before the server announced
// anything (TestRateLimitStaticPaceNotBoundedByMaxRetryAfter).
func TestRateLimitStaticPaceUnderALearnedQuotaNotBoundedByMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			// 5000 an hour: a pace of more than one a second.
			w.Header().Set("RateLimit-Policy", `"default";q=5000;w=3600`)
			w.Header().Set("RateLimit", `"default";r=4990;t=3000`)
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(1.0/30, 1), WithMaxRetryAfter(10*time.Second))}
		start := time.Now()
		for i := range 3 {
			if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
				t.Fatalf("call %d, a turn of the static pace 30s ahead: %v", i, err)
			}
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("three calls at one every 30s took %v, want 1m0s", d)
		}
	})
}

// TestRateLimitLearnedPaceBelowTheStaticLimitBoundedByMaxRetryAfter: a
// quota the server announces slower than the caller's WithRateLimit paces
// the host, and a turn of it further ahead than WithMaxRetryAfter is
// refused at once, as a wait the server set.
func TestRateLimitLearnedPaceBelowTheStaticLimitBoundedByMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			// 60 an hour, one left: a turn a minute apart.
			w.Header().Set("RateLimit-Policy", `"default";q=60;w=3600`)
			w.Header().Set("RateLimit", `"default";r=1;t=3000`)
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(10, 10), WithMaxRetryAfter(10*time.Second))}
		if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
			t.Fatal(err)
		}
		if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := do(t, client, "GET", "http://api.test/")
		if !errors.Is(err, ErrRateLimited) {
			t.Fatalf("a turn of the server's pace a minute ahead: err = %v, want ErrRateLimited", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("refused after %v, want at once", d)
		}
		if n := len(srv.seen("")); n != 2 {
			t.Errorf("%d requests reached the server, want 2", n)
		}
	})
}
