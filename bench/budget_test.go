package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// The retry budget workload (issue 14): calls arrive as a Poisson process
// at a fault server, each in its own goroutine, for minutes of fake time
// in a testing/synctest bubble (resilienttest.NewPipeServer), with the
// breaker off so that only the budget bounds the retries. Our Transport's
// figures are asserted against the targets; with -anchors, the policies
// the issue cites run in the same harness, side by side, and the table of
// README.md's "Retry budget and hedging" section is logged.

var anchors = flag.Bool("anchors", false, "also run the anchor policies of the retry budget workload (slower)")

// A budgetScenario is a fault server and a stream of calls.
type budgetScenario struct {
	name string        // subtest name and table column
	rate float64       // calls per second, Poisson arrivals
	dur  time.Duration // of fake time during which calls start
	fail float64       // share of attempts answered with a 5xx, at random
	// The targets, for our Transport with its default budget; zero for none.
	maxPerCall float64 // server attempts per call
	minSuccess float64 // share of calls that succeed
}

var budgetScenarios = []budgetScenario{
	{name: "outage 10/s 1min", rate: 10, dur: time.Minute, fail: 1},
	{name: "outage 10/s", rate: 10, dur: 10 * time.Minute, fail: 1, maxPerCall: 1.01},
	{name: "outage 100/s", rate: 100, dur: 10 * time.Minute, fail: 1, maxPerCall: 1.002},
	{name: "outage 1000/s 1min", rate: 1000, dur: time.Minute, fail: 1, maxPerCall: 1.002},
	{name: "10% 5xx", rate: 100, dur: 10 * time.Minute, fail: 0.1, minSuccess: 0.999},
	{name: "40% 5xx", rate: 100, dur: 10 * time.Minute, fail: 0.4, maxPerCall: 1.5},
}

// A budgetPeer is a client under test: ours, or a policy of the anchors.
type budgetPeer struct {
	name   string
	ours   bool // our Transport with its default budget: the targets apply
	anchor bool // runs with -anchors only
	build  func(base http.RoundTripper) doer
}

var budgetPeers = []budgetPeer{
	{name: "resilient, default budget", ours: true, build: func(base http.RoundTripper) doer {
		return clientDo(resilient.New(base, resilient.WithoutBreaker()))
	}},
	{name: "resilient, no budget", anchor: true, build: func(base http.RoundTripper) doer {
		return clientDo(resilient.New(base, resilient.WithoutBreaker(), resilient.WithoutRetryBudget()))
	}},
	{name: "gRPC throttling 10/0.1 (model)", anchor: true, build: func(base http.RoundTripper) doer {
		return newRetryModel(base, newGRPCThrottle(10, 0.1)).do
	}},
	{name: "Finagle 20% + 10/s (model)", anchor: true, build: func(base http.RoundTripper) doer {
		return newRetryModel(base, newFinagleBudget()).do
	}},
	{name: "Envoy 20%, min 3 (model)", anchor: true, build: func(base http.RoundTripper) doer {
		return newRetryModel(base, newEnvoyBudget(0.2, 3)).do
	}},
	{name: "failsafe-go budget 20%, min 3", anchor: true, build: failsafeBudget},
}

// failsafeBudget is failsafe-go's retry policy (5 retries, our backoff
// base and cap) with its retry budget at its defaults: at most 20% of the
// executions in flight may be retries, and at least 3 retries at once.
func failsafeBudget(base http.RoundTripper) doer {
	rp := failsafehttp.NewRetryPolicyBuilder().
		WithMaxRetries(maxRetries).
		WithBackoff(resilient.DefaultBackoffBase, resilient.DefaultBackoffMax).
		WithBudget(budget.New()).
		Build()
	return clientDo(failsafehttp.NewRoundTripper(base, rp))
}

func clientDo(rt http.RoundTripper) doer { return (&http.Client{Transport: rt}).Do }

// budgetResult is what one client did in one scenario.
type budgetResult struct {
	calls, ok, attempts int
}

func (r budgetResult) perCall() float64 { return float64(r.attempts) / float64(r.calls) }
func (r budgetResult) success() float64 { return float64(r.ok) / float64(r.calls) }

// poissonCalls starts calls at the arrival times of a Poisson process of
// rate calls per second, drawn from seed, during d of the bubble's fake
// time, each in its own goroutine, and returns their outcomes once all
// have ended.
func poissonCalls(rate float64, d time.Duration, seed uint64, fn func(i int) outcome) []outcome {
	rnd := rand.New(rand.NewPCG(seed, seed))
	var at []time.Duration
	for t := time.Duration(0); ; {
		t += time.Duration(rnd.ExpFloat64() / rate * float64(time.Second))
		if t >= d {
			break
		}
		at = append(at, t)
	}
	outs := make([]outcome, len(at))
	var wg sync.WaitGroup
	start := time.Now()
	for i, t := range at {
		time.Sleep(t - time.Since(start))
		wg.Go(func() { outs[i] = fn(i) })
	}
	wg.Wait()
	return outs
}

// runBudget runs one client in one scenario, in a synctest bubble, against
// a Postato server whose 5xx are 500, 502, 503 or 504 without Retry-After.
func runBudget(t *testing.T, sc budgetScenario, p budgetPeer) budgetResult {
	var r budgetResult
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Postato,
			resilienttest.WithFaults(resilienttest.Faults{Seed: seed, ServerError: sc.fail}))
		defer srv.Close()
		do := p.build(srv.Transport())
		url := srv.URL + "/v1/posts"
		outs := poissonCalls(sc.rate, sc.dur, seed, func(i int) outcome {
			return call(do, http.MethodGet, url, nil, strconv.Itoa(i))
		})
		r = tally(outs, srv.Stats().Requests)
	})
	return r
}

func tally(outs []outcome, attempts int) budgetResult {
	r := budgetResult{calls: len(outs), attempts: attempts}
	for _, o := range outs {
		if o.ok() {
			r.ok++
		}
	}
	return r
}

// TestBudget runs the scenarios of the retry budget workload: our
// Transport's figures are asserted against the targets, and, with
// -anchors, the anchors run beside it and the table is logged.
func TestBudget(t *testing.T) {
	results := make(map[[2]string]budgetResult)
	for _, sc := range budgetScenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, p := range budgetPeers {
				if p.anchor && !*anchors {
					continue
				}
				t.Run(p.name, func(t *testing.T) {
					start := time.Now()
					r := runBudget(t, sc, p)
					results[[2]string{sc.name, p.name}] = r
					t.Logf("%d calls, %.2f%% succeeded, %.4f server attempts per call (%v)",
						r.calls, 100*r.success(), r.perCall(), time.Since(start).Round(time.Millisecond))
					if p.ours {
						checkBudget(t, sc, r)
					}
				})
			}
		})
	}
	if *anchors {
		t.Log("\n" + budgetTable(results))
	}
}

// checkBudget asserts the targets of sc on our Transport's result, and the
// bound its default budget sets on an outage: the retries it pays for in
// all are its Burst.
func checkBudget(t *testing.T, sc budgetScenario, r budgetResult) {
	t.Helper()
	if sc.fail == 1 {
		if extra := r.attempts - r.calls; extra > resilient.DefaultRetryBudgetBurst {
			t.Errorf("outage: %d retries in all, want at most the budget's burst, %d", extra, resilient.DefaultRetryBudgetBurst)
		}
		if r.ok != 0 {
			t.Errorf("outage: %d calls succeeded", r.ok)
		}
	}
	if sc.maxPerCall > 0 && r.perCall() > sc.maxPerCall {
		t.Errorf("%.4f server attempts per call, want at most %v", r.perCall(), sc.maxPerCall)
	}
	if sc.minSuccess > 0 && r.success() < sc.minSuccess {
		t.Errorf("%.3f%% of calls succeeded, want at least %.1f%%", 100*r.success(), 100*sc.minSuccess)
	}
	if sc.fail < 1 && r.success() < 1-sc.fail {
		t.Errorf("%.2f%% of calls succeeded, less than one attempt each gives (%.0f%%)", 100*r.success(), 100*(1-sc.fail))
	}
}

// budgetTable renders the results as README.md's table: per client, the
// server attempts per call in each outage, and the success and attempts
// per call under random faults.
func budgetTable(results map[[2]string]budgetResult) string {
	var b strings.Builder
	b.WriteString("| client |")
	for _, sc := range budgetScenarios {
		if sc.fail == 1 {
			fmt.Fprintf(&b, " %s: attempts/call |", sc.name)
		} else {
			fmt.Fprintf(&b, " %s: success | attempts/call |", sc.name)
		}
	}
	b.WriteString("\n|---|")
	for _, sc := range budgetScenarios {
		if sc.fail == 1 {
			b.WriteString("---:|")
		} else {
			b.WriteString("---:|---:|")
		}
	}
	for _, p := range budgetPeers {
		fmt.Fprintf(&b, "\n| %s |", p.name)
		for _, sc := range budgetScenarios {
			r, ok := results[[2]string{sc.name, p.name}]
			switch {
			case !ok && sc.fail == 1:
				b.WriteString(" – |")
			case !ok:
				b.WriteString(" – | – |")
			case sc.fail == 1:
				fmt.Fprintf(&b, " %.4f |", r.perCall())
			default:
				fmt.Fprintf(&b, " %.2f%% | %.3f |", 100*r.success(), r.perCall())
			}
		}
	}
	return b.String()
}

// sdkAttempts is how many attempts an AWS SDK for Go v2 client makes
// (its standard retryer's default).
const sdkAttempts = 3

// sdkDo returns a client that retries as an SDK over an http.Client does:
// up to sdkAttempts calls of do per SDK call, on a network error, a 429 or
// a 5xx, with the AWS SDK's standard backoff between them (a uniform wait
// in [0, 2^n s) before retry n from 1, at most 20 s). It is a hand-written
// stand-in for aws-sdk-go-v2's standard retryer without its client-side
// retry quota: the quota would only lower the attempts, and keeping it out
// makes the SDK's layer the worst case. The examples module runs the real
// SDK (examples/aws_test.go).
func sdkDo(do doer, seed uint64) doer {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, 3))
	return func(req *http.Request) (*http.Response, error) {
		for n := 1; ; n++ {
			resp, err := do(req)
			if n == sdkAttempts || err == nil && !retryableStatus(resp.StatusCode) {
				return resp, err
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			wait := min(20*time.Second, time.Duration(rnd.Float64()*float64(time.Second<<n)))
			mu.Unlock()
			if err := sleepCtx(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBudgetSDK is the stacked-retries scenario: an SDK that makes 3
// attempts per call, over our Transport, against a host that answers 500
// to everything, at 10 SDK calls per second for 10 minutes. Target: at
// most 3.1 server attempts per SDK call (18 without a budget). With
// -anchors it also runs without a budget, and with the examples module's
// recipe for the AWS SDK (our retries off: WithMaxRetries(0)).
func TestBudgetSDK(t *testing.T) {
	for _, tc := range []struct {
		name   string
		anchor bool
		opts   []resilient.Option
		max    float64
	}{
		{"SDK over resilient, default budget", false, nil, 3.1},
		{"SDK over resilient, no budget", true, []resilient.Option{resilient.WithoutRetryBudget()}, 0},
		{"SDK over resilient.WithMaxRetries(0)", true, []resilient.Option{resilient.WithMaxRetries(0)}, 0},
	} {
		if tc.anchor && !*anchors {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var r budgetResult
			synctest.Test(t, func(t *testing.T) {
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly,
					resilienttest.WithFaults(resilienttest.Faults{Seed: seed, ServerError: 1}))
				defer srv.Close()
				opts := append([]resilient.Option{resilient.WithoutBreaker()}, tc.opts...)
				do := sdkDo(clientDo(resilient.New(srv.Transport(), opts...)), seed)
				url := srv.URL + "/v1/posts"
				outs := poissonCalls(10, 10*time.Minute, seed, func(i int) outcome {
					return call(do, http.MethodGet, url, nil, strconv.Itoa(i))
				})
				r = tally(outs, srv.Stats().Requests)
			})
			t.Logf("%d SDK calls, %.4f server attempts per SDK call", r.calls, r.perCall())
			if r.ok != 0 {
				t.Errorf("%d calls succeeded against a persistent 500", r.ok)
			}
			if tc.max > 0 {
				if r.perCall() > tc.max {
					t.Errorf("%.4f server attempts per SDK call, want at most %v", r.perCall(), tc.max)
				}
				if extra := r.attempts - sdkAttempts*r.calls; extra > resilient.DefaultRetryBudgetBurst {
					t.Errorf("%d attempts beyond the SDK's own, want at most the budget's burst, %d", extra, resilient.DefaultRetryBudgetBurst)
				}
			}
		})
	}
}
