package resilient

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetryBudgetFullOutageAttemptsPerCall: DESIGN.md's bound for a full
// outage with the breaker off and the budget on, in fake time, the calls
// coming at a steady rate whatever the earlier ones still wait for: at most
// 1.01 server attempts per call at 10 calls/s (over 10 minutes) and 1.002
// at 100 calls/s (over a minute), for a host that answers 503, one that
// answers 503 with "Retry-After: 0" (which asks for no wait: its retries
// cost what blind ones do), one that answers 429 without a wait or with
// "Retry-After: 0" (a gateway's blanket refusal: its retries, paced by
// nothing but the backoff, cost ThrottledCost, and an outage so answered
// took 10 times the Burst, 1.0167 attempts per call; see also
// TestRetryBudgetThrottledCostNeedsTheServersWait) and one whose every
// dial is refused. Only the Burst's first retries reach it: a
// refused retry marks the budget used, so that it regains nothing while
// its host is called.
func TestRetryBudgetFullOutageAttemptsPerCall(t *testing.T) {
	outages := []struct {
		name string
		fail func(*http.Request) (*http.Response, error)
	}{
		{"503", func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}},
		{"503 Retry-After: 0", func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"0"}}, Body: http.NoBody, Request: req}, nil
		}},
		{"429", func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 429, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}},
		{"429 Retry-After: 0", func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"0"}}, Body: http.NoBody, Request: req}, nil
		}},
		{"refused dial", func(req *http.Request) (*http.Response, error) {
			return nil, refusedDial("tcp", "127.0.0.1:9")
		}},
	}
	rates := []struct {
		perSecond int
		over      time.Duration
		want      float64
	}{
		{10, 10 * time.Minute, 1.01},
		{100, time.Minute, 1.002},
	}
	for _, o := range outages {
		for _, r := range rates {
			t.Run(fmt.Sprintf("%s/%d per s", o.name, r.perSecond), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var sent atomic.Int64
					tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
						sent.Add(1)
						return o.fail(req)
					}), WithoutBreaker())
					calls := int(r.over/time.Second) * r.perSecond
					var wg sync.WaitGroup
					for range calls {
						wg.Add(1)
						go func() {
							defer wg.Done()
							resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/v1/items", nil))
							if err == nil {
								resp.Body.Close()
							}
						}()
						time.Sleep(time.Second / time.Duration(r.perSecond))
					}
					wg.Wait()
					if per := float64(sent.Load()) / float64(calls); per > r.want {
						t.Errorf("%d calls at %d/s: %d server attempts, %.4f per call; want at most %v", calls, r.perSecond, sent.Load(), per, r.want)
					}
				})
			})
		}
	}
}
