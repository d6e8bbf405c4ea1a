package resilient

import (
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestPaceWindowGoesWithItsLimit: the window learned with a limit is not
// paired with another limit a later response announces without a window.
// A host whose quota of 5000 an hour (10 left, the window estimated from
// its reset an hour ahead) becomes one of 60 a minute, announced without a
// window, is paced by the new quota: 20 calls, one every 2 seconds, with
// never fewer than 40 left, all reach the server, not refused for a pace
// of 60 an hour the server never announced. The other way, a quota of 60
// an hour that becomes one of 5000 announced with neither a window nor a
// reset no longer paces the host: its calls are not held at one a minute
// by the quota the server no longer announces.
func TestPaceWindowGoesWithItsLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(h http.Header)                         // the first response's quota
		then  func(h http.Header, n int, t time.Duration) // the n-th response's after, t after the first call
	}{{
		name: "5000 an hour, then 60 a minute without its window",
		first: func(h http.Header) {
			h.Set("X-RateLimit-Limit", "5000")
			h.Set("X-RateLimit-Remaining", "10")
			h.Set("X-RateLimit-Reset", "3600")
		},
		then: func(h http.Header, n int, t time.Duration) {
			h.Set("X-RateLimit-Limit", "60")
			h.Set("X-RateLimit-Remaining", strconv.Itoa(60-n))
			h.Set("X-RateLimit-Reset", strconv.Itoa(int((time.Minute-t)/time.Second)))
		},
	}, {
		name: "60 an hour, then 5000 without a window or a reset",
		first: func(h http.Header) {
			h.Set("X-RateLimit-Limit", "60")
			h.Set("X-RateLimit-Remaining", "5")
			h.Set("X-RateLimit-Reset", "3600")
		},
		then: func(h http.Header, n int, t time.Duration) {
			h.Set("X-RateLimit-Limit", "5000")
			h.Set("X-RateLimit-Remaining", strconv.Itoa(5000-n))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						tc.first(w.Header())
						return
					}
					tc.then(w.Header(), n, time.Since(t0))
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				const calls = 20
				for i := range calls {
					if i > 0 {
						time.Sleep(2 * time.Second)
					}
					if code, err := do(t, client, "GET", "http://api.test/"); err != nil || code != http.StatusOK {
						t.Fatalf("call %d: %d, %v; want the server's answer", i+1, code, err)
					}
				}
				if n := len(srv.seen("")); n != calls {
					t.Errorf("the server saw %d calls, want %d", n, calls)
				}
			})
		})
	}
}
