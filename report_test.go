package resilient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

func TestReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503, header: http.Header{"Retry-After": {"2"}}}, {status: 200}}}
		var r Report
		ctx := WithReport(context.Background(), &r)
		tr := New(s, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := Report{Attempts: 2, Waited: 2 * time.Second, Duration: 2 * time.Second, Outcome: OutcomeSuccess, StatusCode: 200}
		if r != want {
			t.Errorf("Report = %+v, want %+v", r, want)
		}

		// A first-try success is reported too.
		s = &rtScript{steps: []rtStep{{status: 200}}}
		r = Report{}
		resp, _ = roundTrip(t, New(s), newRequest(t, ctx, "GET", "http://api.test/", nil))
		resp.Body.Close()
		if want := (Report{Attempts: 1, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
			t.Errorf("Report = %+v, want %+v", r, want)
		}

		// A failure: the stop reason and the outcome.
		s = &rtScript{steps: []rtStep{{err: errReset}}}
		r = Report{}
		_, err = roundTrip(t, New(s, WithMaxRetries(1), WithBackoff(0, 0)), newRequest(t, ctx, "GET", "http://api.test/", nil))
		if !errors.Is(err, errReset) || r.Attempts != 2 || r.Outcome != OutcomeTransient || r.StopReason != StopMaxAttempts || r.StatusCode != 0 {
			t.Errorf("Report = %+v after %v", r, err)
		}
	})
}

func TestReportRedirects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{
			{status: http.StatusFound, header: http.Header{"Location": {"/b"}}},
			{status: 503, header: http.Header{"Retry-After": {"2"}}},
			{status: http.StatusMovedPermanently, header: http.Header{"Location": {"/c"}}},
			{status: 200},
		}}
		tr := New(s, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }))
		client := &http.Client{Transport: tr}
		var r Report
		ctx := WithReport(context.Background(), &r)
		req := newRequest(t, ctx, "GET", "http://api.test/a", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := Report{Attempts: 4, Redirects: 2, Waited: 2 * time.Second, Duration: 2 * time.Second, Outcome: OutcomeSuccess, StatusCode: 200}
		if r != want {
			t.Errorf("Report after two redirects = %+v, want %+v", r, want)
		}

		// The next call with the same Report overwrites it.
		s.steps = append(s.steps, rtStep{status: 200})
		resp, err = client.Do(newRequest(t, ctx, "GET", "http://api.test/d", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := (Report{Attempts: 1, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
			t.Errorf("Report of the next call = %+v, want %+v", r, want)
		}
	})
}

// TestReportCountsHedges: Report.Attempts counts hedged copies, as its
// documentation says (and as resilientotel reads it: the retries of a call
// are its attempts less its hedges, less one).
func TestReportCountsHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := slowFirst()
		tr := New(rt, WithHedging(Hedging{Delay: 50 * time.Millisecond}))
		var r Report
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if want := (Report{Attempts: 2, Hedges: 1, Duration: 60 * time.Millisecond, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
			t.Errorf("Report of a hedged call = %+v, want %+v", r, want)
		}
	})
}

// TestReportWaitCanceled: a call canceled during its wait before a retry
// reports the time it waited, not the whole wait it had planned: 1s of a
// 30s Retry-After, within the call's 1s.
func TestReportWaitCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 503, header: http.Header{"Retry-After": {"30"}}}}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var r Report
		ctx = WithReport(ctx, &r)
		tr := New(s, withRand(func(int64) int64 { return 0 }))
		time.AfterFunc(time.Second, cancel)
		if _, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want canceled", err)
		}
		if r.Waited != time.Second || r.Duration != time.Second || r.Outcome != OutcomeCanceled {
			t.Errorf("Report = %+v, want 1s waited in a call of 1s, canceled", r)
		}
	})
}

// TestReportOnPanic: a panic that goes through RoundTrip, from the base
// RoundTripper during an attempt or from an observer once the attempt
// ended, reaches the caller with its own value, and the Report says what
// the call did until then: its attempts (the one that panicked included),
// its waits and its duration, with no status and no outcome, for no
// attempt's result was returned. (It was left as it was: the zero Report,
// or a previous call's.)
func TestReportOnPanic(t *testing.T) {
	for _, where := range []string{"base", "observer"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n int
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					n++
					if n == 2 && where == "base" {
						panic("base exploded")
					}
					status := 200
					if n == 1 {
						status = 503
					}
					return &http.Response{StatusCode: status, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithObserver(func(a Attempt) {
						if a.Number == 2 && where == "observer" {
							panic("observer exploded")
						}
					}))
				r := Report{Attempts: 7, Outcome: OutcomeSuccess, StatusCode: 200} // a previous call's
				ctx := WithReport(context.Background(), &r)
				func() {
					defer func() {
						if p := recover(); p != where+" exploded" {
							t.Errorf("recovered %v, want the %s's panic", p, where)
						}
					}()
					tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/", nil))
				}()
				if want := (Report{Attempts: 2, Waited: time.Second, Duration: time.Second}); r != want {
					t.Errorf("Report after a panic = %+v, want %+v", r, want)
				}
			})
		})
	}
}

// TestReportLocalRefusalAfterResponse: when a layer of the chain refuses a
// retry locally, or the call's budget cuts it, and the call returns the
// previous attempt's response, the Report's Outcome is the retry's (the
// call's last attempt) and its StatusCode the response's, as Report says;
// a retry the budget refuses is no attempt: the Outcome is the last
// attempt's, with its StopReason, also when that attempt failed without
// an answer and the call returns the response of the one before.
func TestReportLocalRefusalAfterResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		opts   []Option
		want   Report
		steps  []rtStep // the script; nil for a 503 with header
	}{
		{"breaker opened", nil, []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1})},
			Report{Attempts: 2, Outcome: OutcomeCircuitOpen, StatusCode: 503}, nil},
		{"rate limiter", http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3600"}}, nil,
			Report{Attempts: 2, Outcome: OutcomeRateLimited, StatusCode: 503}, nil},
		{"retry budget", nil, []Option{WithRetryBudget(RetryBudget{Burst: 0.5})},
			Report{Attempts: 1, Outcome: OutcomeTransient, StatusCode: 503, StopReason: StopRetryBudget}, nil},
		// The retry of a 429 fails on the network, and the budget
		// refuses the next: the call returns the 429, with the last
		// attempt's Outcome, which the Report said was the 429's. (A
		// 429 without a wait costs a whole retry: the Burst pays one.)
		{"retry budget after a network error", nil, []Option{WithRetryBudget(RetryBudget{Burst: 1.5})},
			Report{Attempts: 2, Outcome: OutcomeTransient, StatusCode: 429, StopReason: StopRetryBudget},
			[]rtStep{{status: 429}, {err: errRefused}}},
		// The retry of a 429 hangs until the call's budget cuts it: the
		// call returns the 429, with the cut retry's Outcome, which the
		// Report said was the 429's.
		{"retry cut by the call's budget", nil, []Option{WithMaxElapsed(5 * time.Second)},
			Report{Attempts: 2, Duration: 5 * time.Second, Outcome: OutcomeTransient, StatusCode: 429, StopReason: StopDeadline},
			[]rtStep{{status: 429}, {hang: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				steps := tc.steps
				if steps == nil {
					steps = []rtStep{{status: 503, header: tc.header}}
				}
				s := &rtScript{steps: steps}
				tr := New(s, append([]Option{WithBackoff(0, 0)}, tc.opts...)...)
				var r Report
				resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != steps[0].status || s.numCalls() != len(steps) {
					t.Fatalf("status %d after %d requests, want the %d after %d", resp.StatusCode, s.numCalls(), steps[0].status, len(steps))
				}
				if r != tc.want {
					t.Errorf("Report = %+v, want %+v", r, tc.want)
				}
			})
		})
	}
}

// TestReportHedgesCountsCopiesSent: Report.Hedges, and the attempt's
// Attempt.Hedges, count the hedged copies that reached the base
// RoundTripper, whatever refused the others: a copy refused by the rate
// limiter (its wait would pass the call's deadline), one still waiting for
// the rate limiter when its attempt answered, one the breaker refused (it
// opened while the copy waited for the rate limiter), one that found the
// host full after the rate limiter (WithMaxInFlight). None is sent: the
// call made one attempt and no hedge. (The copies the rate limiter or the
// breaker refused were counted, the one the limit refused was not.)
func TestReportHedgesCountsCopiesSent(t *testing.T) {
	hedging := WithHedging(Hedging{Delay: 20 * time.Millisecond})
	for _, tc := range []struct {
		name  string
		opts  []Option
		ctx   time.Duration // the call's deadline; 0 for none
		fails bool          // the other call's 500 opens the breaker
	}{
		// The attempt takes the limiter's one token; the copy would get
		// the next a second later.
		{name: "rate limiter refused", opts: []Option{WithRateLimit(rate.Every(time.Second), 1)}, ctx: 500 * time.Millisecond},
		{name: "rate limiter, the attempt answered", opts: []Option{WithRateLimit(rate.Every(time.Second), 1)}},
		// The copy waits for the reads' next token (100ms); a write, paced
		// apart, fails meanwhile, and the breaker opens.
		{name: "breaker", opts: []Option{WithRateLimit(10, 1), WithBreaker(BreakerSettings{ConsecutiveFailures: 1})}, fails: true},
		// The copy waits for the reads' next token (100ms); a write,
		// paced apart, takes the host's last slot meanwhile.
		{name: "host full", opts: []Option{WithRateLimit(10, 1), WithMaxInFlight(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &flightRT{
					latency: func(_ int, r *http.Request) time.Duration {
						if r.Method == http.MethodPost {
							if tc.fails {
								return 0
							}
							return time.Minute
						}
						return 200 * time.Millisecond
					},
					status: func(i int) int {
						if tc.fails && i == 1 {
							return http.StatusInternalServerError
						}
						return http.StatusOK
					},
				}
				var obs observed
				tr := New(srv, append([]Option{hedging, WithObserver(obs.add)}, tc.opts...)...)
				defer roundTripAt(t, tr, 50*time.Millisecond, http.MethodPost, "http://api.test/b")() // a write of the host
				var r Report
				ctx := WithReport(timeoutCtx(t, tc.ctx), &r)
				if code, err := getIn(t, tr, ctx, "http://api.test/a"); code != 200 {
					t.Fatalf("%d, %v", code, err)
				}
				time.Sleep(time.Second) // the copy ends
				synctest.Wait()
				if got := srv.seen(); slices.Contains(got[1:], "api.test/a") {
					t.Fatalf("the server saw %q: a copy was sent", got)
				}
				if r.Hedges != 0 || r.Attempts != 1 {
					t.Errorf("Report %+v, want 1 attempt and no hedge: no copy was sent", r)
				}
				if a := obs.path("/a"); len(a) != 1 || a[0].Hedges != 0 || a[0].Hedge != 0 {
					t.Errorf("attempts observed: %+v, want one, without hedges", a)
				}
				if tc.fails && tr.BreakerState("http://api.test/") != BreakerOpen {
					t.Errorf("breaker %v, want open: the write's 500 opened it", tr.BreakerState("http://api.test/"))
				}
			})
		})
	}
}

// TestReportNestedTransports: a Report belongs to the call the caller
// made, which the outer Transport of New(New(base)) reports; the inner
// Transport, whose calls are the outer one's attempts, does not fill it.
// It did: through a redirect, each hop's inner call added itself to the
// hops before it, and the outer hop then added the inner one's count
// again (3 attempts and 2 redirects for 2 and 1); and a hedged copy's inner
// call, still running when the outer call returned, wrote over the
// caller's Report after RoundTrip returned, as the caller read it (a data
// race).
func TestReportNestedTransports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: http.StatusTemporaryRedirect, header: http.Header{"Location": {"/b"}}}, {status: 200}}}
		var r Report
		req := newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/a", nil)
		resp, err := (&http.Client{Transport: New(New(s))}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := (Report{Attempts: 2, Redirects: 1, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
			t.Errorf("Report of a redirected call through nested Transports = %+v, want %+v", r, want)
		}

		// The attempt answers after 30ms; its copy, sent at 10ms, is held
		// until the call has returned, then answers.
		release := make(chan struct{})
		s = &rtScript{steps: []rtStep{
			{status: 200, before: func(*http.Request) { time.Sleep(30 * time.Millisecond) }},
			{status: 200, before: func(*http.Request) { <-release }},
		}}
		tr := New(New(s, WithMaxRetries(0)), WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		r = Report{}
		resp, err = roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := r
		close(release)
		synctest.Wait()
		if want := (Report{Attempts: 2, Hedges: 1, Duration: 30 * time.Millisecond, Outcome: OutcomeSuccess, StatusCode: 200}); got != want || r != got {
			t.Errorf("Report of a hedged call through nested Transports = %+v as it returned, %+v once its copy ended; want %+v", got, r, want)
		}
	})
}
