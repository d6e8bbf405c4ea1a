package resilient

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuotaStorePauseThenTokenBoundedInTotal: the wait for a QuotaStore's
// token, which paces the quota the server announced (the fleet's pace), is
// bounded with the waits for the server's limits before it, as a turn of
// the local pace is (see TestPauseThenPaceBoundedInTotal): WithMaxRetryAfter
// bounds them in all. An attempt that waited out the fleet's pause of 40s
// and is then handed a token 40s later (80s in all, past the default 60s)
// is refused when it gets the token, not held until then; one handed a
// token 40s ahead first, then finding a pause of 40s, is refused at the
// pause. Both were sent after 80s.
func TestQuotaStorePauseThenTokenBoundedInTotal(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pauseFirst bool
	}{
		{"pause, then token", true},
		{"token, then pause", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				part, send, hits := quotaMember(t, withRand(func(int64) int64 { return 0 }))
				const wait = 40 * time.Second
				if tc.pauseFirst {
					part.Pause(time.Now().Add(wait)) // another member's 429
				}
				part.mu.Lock()
				part.take = func(n int, now time.Time) (time.Duration, bool, <-chan struct{}) {
					if !tc.pauseFirst && n == 2 {
						// Another member's 429 as this one's token comes.
						time.AfterFunc(wait-time.Millisecond, func() { part.Pause(now.Add(2 * wait)) })
					}
					return wait, true, nil
				}
				part.mu.Unlock()
				start := time.Now()
				err := send()
				if d := time.Since(start); !errors.Is(err, ErrRateLimited) || d > DefaultMaxRetryAfter || *hits != 1 {
					t.Errorf("after %v: %v, %d requests sent; want it refused (ErrRateLimited) within %v of waiting for the server's limits, 1 request sent", d, err, *hits, DefaultMaxRetryAfter)
				}
			})
		})
	}
}
