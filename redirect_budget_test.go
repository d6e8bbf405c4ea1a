package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// budgetRedirectServer starts a pipe server whose /a answers a 503 after 5
// seconds to its first slow requests, then redirects to /b with status;
// whose /b answers a 503 after 5 seconds while failing is set, else a 200
// after 5 seconds. It counts the requests of each path.
func budgetRedirectServer(t *testing.T, slow int32, status int, hitsA, hitsB *atomic.Int32, failing *atomic.Bool) *resilienttest.Server {
	t.Helper()
	return resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/a":
			if hitsA.Add(1) > slow {
				http.Redirect(w, r, "/b", status)
				return
			}
		case "/b":
			hitsB.Add(1)
			if !failing.Load() {
				time.Sleep(5 * time.Second)
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		time.Sleep(5 * time.Second)
		w.WriteHeader(http.StatusServiceUnavailable)
	})))
}

// TestRedirectHopsShareTheBudget: a server whose first path fails slowly
// through 8 retries (48 s of a 60 s WithMaxElapsed) and then redirects to
// a path that keeps failing: the hop that follows the redirect has what is
// left of the call's budget (12 s: two attempts of 5 s), not a budget of
// its own, and the whole call (the chain of hops http.Client follows) ends
// within one WithMaxElapsed. Before, each hop had a whole budget: /b was
// tried 10 times and the call took 107 s, up to 11 times the budget over
// 10 redirects. GET through a 302, a keyed POST through a 307 (which keeps
// the write rule: its key honored, its hop retried), and a Transport over
// another (whose attempts are each a whole call of the one below).
func TestRedirectHopsShareTheBudget(t *testing.T) {
	const maxElapsed, attemptTimeout = 60 * time.Second, 10 * time.Second
	tests := []struct {
		name   string
		method string
		status int
		nested bool
	}{
		{"GET 302", http.MethodGet, http.StatusFound, false},
		{"keyed POST 307", http.MethodPost, http.StatusTemporaryRedirect, false},
		{"GET 302 nested", http.MethodGet, http.StatusFound, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hitsA, hitsB atomic.Int32
				var failing atomic.Bool
				failing.Store(true)
				srv := budgetRedirectServer(t, 8, tc.status, &hitsA, &hitsB, &failing)
				defer srv.Close()
				host := strings.TrimPrefix(srv.URL, "http://")
				var base http.RoundTripper = srv.Transport()
				if tc.nested {
					base = New(base, WithMaxRetries(0), WithoutBreaker(), WithoutRetryBudget())
				}
				tr := New(base, WithMaxElapsed(maxElapsed), WithAttemptTimeout(attemptTimeout), WithMaxRetries(100),
					WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithoutBreaker(), WithoutRetryBudget(), WithKeyHonoringHosts(host))
				cl := &http.Client{Transport: tr}
				var rep Report
				req := newRequest(t, WithReport(context.Background(), &rep), tc.method, srv.URL+"/a", strings.NewReader(`{"n":1}`))
				start := time.Now()
				resp, err := cl.Do(req)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("err = %v, want the last 503", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusServiceUnavailable)
				}
				if got, want := hitsB.Load(), int32(2); got != want {
					t.Errorf("requests to /b = %v, want %v (the 12 s left of the budget)", got, want)
				}
				if elapsed > maxElapsed+attemptTimeout {
					t.Errorf("call took %v, want at most %v (one WithMaxElapsed, one attempt timeout)", elapsed, maxElapsed+attemptTimeout)
				}
				if rep.Redirects != 1 || rep.Attempts != 11 || rep.Duration > elapsed {
					t.Errorf("Report = %+v, want 1 redirect, 11 attempts, a Duration within %v", rep, elapsed)
				}
				synctest.Wait()
			})
		})
	}
}

// TestRedirectHopBudgetSpent: a redirect returned once the call's budget
// has ended (its answer came 1 s before the end, an observer took 2 s)
// leaves its hop nothing: the hop fails at once with the budget's timeout,
// before any attempt, as a call whose context's deadline has passed does:
// nothing reaches /b, and no attempt cut at once is counted against its
// host. Before, the hop had a budget of its own and tried /b for a whole
// minute more. So does one that leaves its hop less than durationFloor
// (1 ms left, the observer took 999 ms: see call.run), which until
// 2026-12-07 sent /b an attempt cut at once.
func TestRedirectHopBudgetSpent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		observe time.Duration // the observer's time on the redirect
	}{
		{"spent", 2 * time.Second},
		{"1ms left", 999 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hitsA, hitsB atomic.Int32
				var failing atomic.Bool
				failing.Store(true)
				// /a fails 9 times (9 attempts of 5 s, 9 waits of 1 s); the 10th
				// attempt, at 54 s, gets the redirect at once: 1 s left.
				srv := budgetRedirectServer(t, 9, http.StatusFound, &hitsA, &hitsB, &failing)
				defer srv.Close()
				slowObserver := func(a Attempt) {
					if a.StatusCode == http.StatusFound {
						time.Sleep(tc.observe)
					}
				}
				tr := New(srv.Transport(), WithMaxElapsed(55*time.Second), WithMaxRetries(100),
					WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithoutBreaker(), WithoutRetryBudget(), WithObserver(slowObserver))
				cl := &http.Client{Transport: tr}
				var rep Report
				req := newRequest(t, WithReport(context.Background(), &rep), http.MethodGet, srv.URL+"/a", nil)
				resp, err := cl.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status = %d, want the budget's timeout", resp.StatusCode)
				}
				if !errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want it to wrap ErrAttemptTimeout and context.DeadlineExceeded", err)
				}
				if got := hitsB.Load(); got != 0 {
					t.Errorf("requests to /b = %v, want 0", got)
				}
				if rep.Redirects != 1 || rep.Attempts != 10 || rep.Outcome != OutcomeCanceled || rep.StopReason != StopDeadline {
					t.Errorf("Report = %+v, want 1 redirect, 10 attempts, outcome canceled (no attempt, as under a passed deadline), StopDeadline", rep)
				}
				synctest.Wait()
			})
		})
	}
}

// TestRedirectHopReusedHasItsOwnBudget: the request of a hop sent again
// by the caller (the Request of the response the chain ended with, whose
// Response is still the redirect) is a call of its own, with a whole
// budget, not the one left to the chain it was made in; and so is a
// request the caller builds by hand with that redirect as its Response,
// after the hop took what was left.
func TestRedirectHopReusedHasItsOwnBudget(t *testing.T) {
	for _, byHand := range []bool{false, true} {
		name := "reused"
		if byHand {
			name = "by hand"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hitsA, hitsB atomic.Int32
				var failing atomic.Bool
				failing.Store(true)
				srv := budgetRedirectServer(t, 8, http.StatusFound, &hitsA, &hitsB, &failing)
				defer srv.Close()
				tr := New(srv.Transport(), WithMaxElapsed(60*time.Second), WithMaxRetries(100),
					WithBackoff(time.Second, time.Second), withRand(func(int64) int64 { return 0 }),
					WithoutBreaker(), WithoutRetryBudget())
				cl := &http.Client{Transport: tr}
				resp, err := cl.Get(srv.URL + "/a")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				hop := resp.Request
				if hop.Response == nil {
					t.Fatal("the hop's request has no Response")
				}
				// The chain's budget is spent: 59 s of 60. /b answers now,
				// in 5 s.
				failing.Store(false)
				again := hop
				if byHand {
					again = newRequest(t, context.Background(), http.MethodGet, srv.URL+"/b", nil)
					again.Response = hop.Response
				}
				before := hitsB.Load()
				resp, err = tr.RoundTrip(again)
				if err != nil {
					t.Fatalf("err = %v, want a 200", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusOK)
				}
				if got, want := hitsB.Load()-before, int32(1); got != want {
					t.Errorf("requests to /b = %v, want %v", got, want)
				}
				synctest.Wait()
			})
		})
	}
}
