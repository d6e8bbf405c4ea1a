package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// sendCounter is a Tracer that counts the requests that reach the wire:
// the first attempts of calls, and the others (retries and hedged copies),
// each of which the retry budget paid for.
type sendCounter struct {
	first, paid atomic.Int64
}

func (c *sendCounter) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }

func (c *sendCounter) StartAttempt(_ *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	if info.Number == 1 && info.Hedge == 0 {
		c.first.Add(1)
	} else {
		c.paid.Add(1)
	}
	return nil, nil
}

func (c *sendCounter) Attempt(context.Context, Attempt) {}
func (c *sendCounter) EndCall(context.Context, *Report) {}

// TestRetryBudgetEveryTokenPaysForASend: whatever happens to the calls of a
// host that never answers but with failures (500, 502 after a while, 503
// and 429 with a Retry-After, a reset, a hang past the attempt timeout) and
// to their retries and hedged copies (refused by the rate limiter's pause
// or pace, by WithMaxInFlight, by the breaker; canceled during a wait; their
// body not replayable, GetBody failing; an observer panicking), every
// token taken from the host's budget pays for exactly one request that
// reached the wire, and every other is given back once: once every call
// and copy has ended, the budget is short by exactly the retries and
// copies sent. Each seed draws its own options and faults; a store's
// budget (WithQuotaStore) is checked the same way.
func TestRetryBudgetEveryTokenPaysForASend(t *testing.T) {
	for seed := uint64(1); seed <= 16; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				var mu sync.Mutex
				r := func(n int) int { mu.Lock(); defer mu.Unlock(); return rng.IntN(n) }
				reply := func(req *http.Request, status int, retryAfter string) *http.Response {
					h := http.Header{}
					if retryAfter != "" {
						h.Set("Retry-After", retryAfter)
					}
					return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}
				}
				var hits atomic.Int64
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					if req.Body != nil {
						req.Body.Close()
					}
					switch r(6) {
					case 0:
						return reply(req, 500, ""), nil
					case 1:
						<-req.Context().Done()
						return nil, req.Context().Err()
					case 2:
						return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
					case 3:
						return reply(req, 429, fmt.Sprint(r(2))), nil
					case 4:
						return reply(req, 503, "1"), nil
					}
					select {
					case <-time.After(time.Duration(r(200)) * time.Millisecond):
						return reply(req, 502, ""), nil
					case <-req.Context().Done():
						return nil, req.Context().Err()
					}
				})
				sends := new(sendCounter)
				fleet := new(memFleet)
				// Every retry costs one token (ThrottledCost 1), and no
				// answer deposits: what the budget lacks at the end is
				// what it paid for.
				opts := []Option{
					WithRetryBudget(RetryBudget{Burst: 1e6, ThrottledCost: 1}),
					WithKeyHonoringHosts("api.test"),
					WithBackoff(10*time.Millisecond, 50*time.Millisecond),
					WithAttemptTimeout(time.Duration(50+r(100)) * time.Millisecond),
					WithTracer(sends),
				}
				if seed%2 == 0 {
					opts = append(opts, WithHedging(Hedging{Delay: 20 * time.Millisecond, MaxHedges: 2}))
				}
				if seed%3 == 0 {
					opts = append(opts, WithMaxInFlight(2))
				}
				if seed%4 == 1 {
					opts = append(opts, WithRateLimit(20, 2))
				}
				if seed%4 == 2 {
					opts = append(opts, WithQuotaStore(fleet))
				}
				if seed%5 != 0 {
					opts = append(opts, WithoutBreaker())
				}
				if seed%7 < 3 {
					opts = append(opts, WithObserver(func(Attempt) {
						if r(8) == 0 {
							panic("observer exploded")
						}
					}))
				}
				tr := New(base, opts...)
				var wg sync.WaitGroup
				for range 200 {
					method := []string{"GET", "POST", "PUT"}[r(3)]
					body, getBody := r(2) == 0, r(3)
					var timeout time.Duration
					if r(3) == 0 {
						timeout = time.Duration(r(1000)) * time.Millisecond
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { recover() }() // an observer's panic
						ctx := context.Background()
						if timeout > 0 {
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(ctx, timeout)
							defer cancel()
						}
						var rd io.Reader
						if body {
							rd = strings.NewReader("payload")
						}
						req := newRequest(t, ctx, method, "http://api.test/x", rd)
						switch {
						case body && getBody == 0:
							req.GetBody = nil // captured as it is sent
						case body && getBody == 1:
							req.GetBody = func() (io.ReadCloser, error) {
								if r(3) == 0 {
									return nil, errors.New("GetBody failed")
								}
								return io.NopCloser(strings.NewReader("payload")), nil
							}
						}
						if resp, err := tr.RoundTrip(req); err == nil {
							resp.Body.Close()
						}
					}()
					time.Sleep(time.Duration(r(20)) * time.Millisecond)
				}
				wg.Wait()
				time.Sleep(time.Minute) // the copies that lost end too
				synctest.Wait()

				var spent float64
				if seed%4 == 2 {
					tokens, _, _ := fleet.budget("http://api.test:80").state()
					spent = 1e6 - tokens
				} else {
					b := tr.budgets.get(newRequest(t, context.Background(), "GET", "http://api.test/x", nil))
					spent = float64(tr.budgets.burst-b.tokens.Load()&^budgetDropped) / budgetUnit
				}
				if paid := sends.paid.Load(); spent != float64(paid) || hits.Load() != sends.first.Load()+paid {
					t.Errorf("the budget spent %v tokens for %d retries and copies sent (%d requests in all, %d first attempts)", spent, paid, hits.Load(), sends.first.Load())
				}
			})
		})
	}
}
