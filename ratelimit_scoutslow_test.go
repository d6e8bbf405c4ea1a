package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitSlowScoutTurnBeside: as in TestRateLimitSpentQuotaScoutFailed,
// a host's quota of 100 an hour is spent a second before the hour is over,
// a batch of 50 calls is made then, and the pace's bucket holds no token
// at the reset (its turns 38 s apart): the first of the attempts whose turn
// passes the bound goes as the new window's scout, without a token, halfway
// through the wait for its answer, some 3 s after the reset (see
// rateLimiter.nextScout). Its answer is slow: 200 with the new window's
// count 3 s later, 500 3 s later, a connection reset 3 s later, or none
// (it hangs to the call's end). The pace's first turn comes 5 s after the
// reset, before the others' wait for the scout's answer ends: sent then,
// beside the slow scout, it is answered in 300 ms with the new window's
// count, which fills the pace's bucket, and the whole batch is answered,
// as a plain client's. (A rule tried and dropped, that the scout takes
// the pace's next turn, sent that turn to the back of the queue: no answer
// came before the others' wait ended, and 41 of 50 were refused, though
// the server, in its new hour, takes them all.)
func TestRateLimitSlowScoutTurnBeside(t *testing.T) {
	slow := func(then func(req *http.Request, srv http.Handler) (*http.Response, error)) func(*http.Request, http.Handler) (*http.Response, error) {
		return func(req *http.Request, srv http.Handler) (*http.Response, error) {
			select {
			case <-time.After(3 * time.Second):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return then(req, srv)
		}
	}
	for _, tc := range []struct {
		name  string
		scout func(req *http.Request, srv http.Handler) (*http.Response, error)
	}{
		{"answered 200", slow(func(req *http.Request, srv http.Handler) (*http.Response, error) {
			return handlerRT{srv}.RoundTrip(req)
		})},
		{"answered 500", slow(func(req *http.Request, _ http.Handler) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})},
		{"connection reset", slow(func(*http.Request, http.Handler) (*http.Response, error) {
			return nil, errReset
		})},
		{"hangs", func(req *http.Request, _ http.Handler) (*http.Response, error) {
			<-req.Context().Done()
			return nil, context.Cause(req.Context())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now().Truncate(time.Hour)
				reset := start.Add(time.Hour)
				srv := &hourQuotaServer{announce: func(left int) bool { return left < 10 }, start: start, latency: 300 * time.Millisecond, ok: map[int]int{}, throttled: map[int]int{}}
				var mu sync.Mutex
				var scout time.Time // when the first request after the reset was sent
				var sent []time.Duration
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					now := time.Now()
					mu.Lock()
					first := scout.IsZero() && !now.Before(reset)
					if first {
						scout = now
					}
					if !now.Before(reset) {
						sent = append(sent, now.Sub(reset))
					}
					mu.Unlock()
					if first {
						return tc.scout(req, srv)
					}
					return handlerRT{srv}.RoundTrip(req)
				})
				tr := New(base, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				useFirstHour(t, client, start, 99)
				time.Sleep(time.Until(reset.Add(-time.Second)))
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
					t.Fatalf("last call of the first hour: %d, %v", code, err)
				}
				counts := map[string]int{}
				eachOfBatch(t, client, 50, func(code int, err error, _ time.Duration) {
					switch {
					case code != 0:
						counts[fmt.Sprint(code)]++
					case errors.Is(err, ErrRateLimited):
						if counts["refused"]++; counts["refused"] == 1 {
							t.Logf("refused: %v", err)
						}
					default:
						counts["failed"]++ // the scout's call: a connection reset, or cut by the call's budget
					}
				})
				mu.Lock()
				defer mu.Unlock()
				if scout.IsZero() || scout.Sub(reset) > 4*time.Second {
					t.Fatalf("the new window's first request went %v after the reset, not as a scout before the pace's first turn (5 s): the case tests nothing", scout.Sub(reset))
				}
				if counts["200"] < 49 || counts["refused"] != 0 || srv.throttled[1] != 0 {
					t.Errorf("batch of 50 held to a spent quota's reset, its scout slow: %v, the server answered %d 429s; want 49 answered 200 at least (all but the scout's call), none refused, none 429, as a plain client's (requests sent at %v after the reset)", counts, srv.throttled[1], sent)
				}
				checkNoneInFlight(t, tr)
			})
		})
	}
}
