package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// The deadline of an attempt whose request the retry loop copies (a write
// with its key, a retry with its replayed body) is readied by the loop in
// the copy's context and armed by the deadline middleware (readyDeadline);
// that of any other attempt is made by the middleware, with a copy of its
// own. The tests below run both ways, a GET's first attempt and a POST's,
// and want the same deadlines, contexts and releases of them.

var readyMethods = []string{http.MethodGet, http.MethodPost}

// TestDeadlineStartsAtSend: the attempt timeout starts when the attempt is
// sent, after the rate limiter's wait, and the call's budget is counted
// from the call's start, whichever way the deadline was made.
func TestDeadlineStartsAtSend(t *testing.T) {
	const wait = 3 * time.Second // the rate limiter's, before the second call's attempt
	for _, method := range readyMethods {
		for _, tc := range []struct {
			name    string
			opts    []Option
			cut     time.Duration // after the call's start
			timeout bool          // cut by the attempt timeout, not the budget
		}{
			{"attempt-timeout", []Option{WithAttemptTimeout(time.Second)}, wait + time.Second, true},
			{"budget", []Option{WithMaxElapsed(5 * time.Second)}, 5 * time.Second, false},
			{"budget-first", []Option{WithMaxElapsed(5 * time.Second), WithAttemptTimeout(4 * time.Second)}, 5 * time.Second, false},
		} {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls int
					var sent time.Time
					var deadline time.Time
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						calls++
						if calls == 1 {
							return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
						}
						sent = time.Now()
						deadline, _ = req.Context().Deadline()
						<-req.Context().Done()
						return nil, context.Cause(req.Context())
					})
					opts := append([]Option{WithMaxRetries(0), WithRateLimit(rate.Every(wait), 1)}, tc.opts...)
					tr := New(base, opts...)
					resp, err := roundTrip(t, tr, newRequest(t, context.Background(), method, "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()

					start := time.Now()
					_, err = roundTrip(t, tr, newRequest(t, context.Background(), method, "http://api.test/", nil))
					if !errors.Is(err, ErrAttemptTimeout) || errors.Is(err, errBudgetSpent) == tc.timeout {
						t.Errorf("err = %v, want the attempt timeout's (%v) or the budget's", err, tc.timeout)
					}
					if d := sent.Sub(start); d != wait {
						t.Errorf("sent after %v, want %v (the rate limiter's wait)", d, wait)
					}
					if d := time.Since(start); d != tc.cut {
						t.Errorf("cut after %v, want %v", d, tc.cut)
					}
					if d := deadline.Sub(start); d != tc.cut {
						t.Errorf("the attempt's context said its deadline was %v after the start, want %v", d, tc.cut)
					}
				})
			})
		}
	}
}

// afterFuncCtx is a context that is never canceled but could be (its Done
// is not nil), and that counts the functions registered with its AfterFunc
// and not yet stopped: the contexts derived from it that are still live.
type afterFuncCtx struct {
	done chan struct{}
	mu   sync.Mutex
	live int
}

func newAfterFuncCtx() *afterFuncCtx { return &afterFuncCtx{done: make(chan struct{})} }

func (c *afterFuncCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *afterFuncCtx) Done() <-chan struct{}       { return c.done }
func (c *afterFuncCtx) Err() error                  { return nil }
func (c *afterFuncCtx) Value(any) any               { return nil }

func (c *afterFuncCtx) AfterFunc(func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live++
	var once sync.Once
	return func() bool {
		stopped := false
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.live--
			stopped = true
		})
		return stopped
	}
}

func (c *afterFuncCtx) numLive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// TestAttemptContextReleased: the context an attempt derives from a
// caller's cancelable context is released when the attempt ends without a
// response (an error of the base, a breaker's or a rate limiter's refusal,
// which comes before the deadline middleware), and, when it ends with one,
// once the response's body is closed; and the breaker counts a failed
// attempt as a failure, not as a call the caller gave up on.
func TestAttemptContextReleased(t *testing.T) {
	for _, method := range readyMethods {
		t.Run(method, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := newAfterFuncCtx()
				var hits int
				fail := true
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits++
					if fail {
						return nil, errReset
					}
					// A body to read: http.NoBody ends the attempt's
					// context at once (TestResponseParity).
					return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
				})
				// a.test and c.test share a breaker, not a pace: a
				// refusal of the breaker gives its token back (see
				// giveBack), so the rate limiter refuses a.test's.
				shared := func(req *http.Request) string {
					if req.URL.Host == "b.test" {
						return "b"
					}
					return "a"
				}
				tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, Key: shared}),
					WithRateLimit(rate.Every(time.Hour), 1))
				// The base fails: counted by the breaker, which opens.
				if _, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://a.test/", nil)); !errors.Is(err, errReset) {
					t.Fatalf("err = %v, want the base's", err)
				}
				if n := ctx.numLive(); n != 0 {
					t.Errorf("%d attempt contexts live after an error", n)
				}
				// Refused by the open breaker, before the deadline middleware.
				if _, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://c.test/", nil)); !errors.Is(err, ErrCircuitOpen) {
					t.Fatalf("err = %v, want ErrCircuitOpen: the breaker did not count the failure", err)
				}
				if n := ctx.numLive(); n != 0 {
					t.Errorf("%d attempt contexts live after the breaker's refusal", n)
				}
				// Refused by the rate limiter (burst 1, one per hour: the
				// first call took a.test's), before the deadline middleware.
				if _, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://a.test/", nil)); !errors.Is(err, ErrRateLimited) {
					t.Fatalf("err = %v, want ErrRateLimited", err)
				}
				if n := ctx.numLive(); n != 0 {
					t.Errorf("%d attempt contexts live after the rate limiter's refusal", n)
				}
				// A response: live until its body is closed.
				fail = false
				resp, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://b.test/", nil))
				if err != nil {
					t.Fatal(err)
				}
				if n := ctx.numLive(); n != 1 {
					t.Errorf("%d attempt contexts live before the body is closed, want 1", n)
				}
				resp.Body.Close()
				if n := ctx.numLive(); n != 0 {
					t.Errorf("%d attempt contexts live after the body is closed", n)
				}
				if hits != 2 {
					t.Errorf("the base saw %d attempts, want 2", hits)
				}
			})
		})
	}
}

// TestOwnAttemptContextReleased is TestAttemptContextReleased's first
// part for a caller's context that is never canceled: the attempt's own
// context (an attemptCtx) ends once the attempt failed, and not before the
// breaker counted the failure.
func TestOwnAttemptContextReleased(t *testing.T) {
	for _, method := range readyMethods {
		t.Run(method, func(t *testing.T) {
			var seen context.Context
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				seen = req.Context()
				return nil, errReset
			})
			tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
			roundTrip(t, tr, newRequest(t, context.Background(), method, "http://a.test/", nil))
			if _, own := seen.(*attemptCtx); !own {
				t.Fatalf("the attempt's context is a %T, want an attemptCtx", seen)
			}
			if !errors.Is(seen.Err(), context.Canceled) {
				t.Errorf("the attempt's context Err() = %v after the attempt, want context.Canceled", seen.Err())
			}
			seen = nil
			if _, err := roundTrip(t, tr, newRequest(t, context.Background(), method, "http://a.test/", nil)); !errors.Is(err, ErrCircuitOpen) || seen != nil {
				t.Errorf("err = %v, want ErrCircuitOpen: the breaker did not count the failure", err)
			}
		})
	}
}

// TestAttemptCtxCarriesTrace: an attemptCtx given a write trace answers
// httptrace's lookup with it, and so do the contexts derived from it
// (net/http derives one per request); without one, it answers with its
// parent's.
func TestAttemptCtxCarriesTrace(t *testing.T) {
	callers := &httptrace.ClientTrace{}
	parent := httptrace.WithClientTrace(context.Background(), callers)
	own := &httptrace.ClientTrace{}
	c := &attemptCtx{parent: context.Background(), trace: own}
	derived, cancel := context.WithCancel(c)
	defer cancel()
	if got := httptrace.ContextClientTrace(derived); got != own {
		t.Errorf("ContextClientTrace = %p, want the attempt's %p", got, own)
	}
	if got := httptrace.ContextClientTrace(&attemptCtx{parent: parent}); got != callers {
		t.Errorf("ContextClientTrace without a trace = %p, want the parent's %p", got, callers)
	}
	if c.Value(attemptCtxKey{}) != nil || c.Value(clientTraceKey) != own {
		t.Error("an attemptCtx answers keys other than httptrace's")
	}
}

// TestDeadlineReadiedAgrees: whenever deadlineReadied lets the retry loop
// ready an attempt's deadline, the deadline middleware, given the same
// attempt without one, would have made a deadline of its own, whatever the
// rate limiter's wait before it: so a readied deadline is always one the
// middleware arms.
func TestDeadlineReadiedAgrees(t *testing.T) {
	start := time.Now()
	ds := []time.Duration{0, time.Second, 2 * time.Second, 5 * time.Second, time.Hour}
	for _, budget := range ds {
		for _, timeout := range ds {
			for _, ctxDeadline := range ds {
				for _, wait := range []time.Duration{0, 3 * time.Second} {
					parent, cancel := context.Background(), context.CancelFunc(func() {})
					if ctxDeadline > 0 {
						parent, cancel = context.WithDeadline(parent, start.Add(ctxDeadline))
					}
					st := &attemptState{callCfg: &config{attemptTimeout: timeout}, start: start.Add(wait)}
					if ctxDeadline > 0 {
						st.ctxDeadline = start.Add(ctxDeadline) // as the retry loop reads it
					}
					if budget > 0 {
						st.budget = start.Add(budget)
					}
					var own bool
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						own = req.Context() != parent
						return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
					})
					mw := &attemptDeadline{next: hopTo(base)}
					resp, err := mw.roundTripAttempt(newRequest(t, parent, http.MethodGet, "http://api.test/", nil), st)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if deadlineReadied(parent, st) && !own {
						t.Errorf("budget %v, timeout %v, context %v, wait %v: readied, but the middleware sets no deadline", budget, timeout, ctxDeadline, wait)
					}
					cancel()
				}
			}
		}
	}
}

// TestAttemptContextReleasedAtEOF: the context an attempt derives from a
// caller's cancelable context is released once the caller has read the
// response's body to its end, closed or not, as net/http releases its own
// there: a caller that reads every body whole and never closes one must
// not leave a derived context registered with a long-lived context per
// call (a goroutine each, under a context of the caller's own type). A
// body read only in part stays live until closed.
func TestAttemptContextReleasedAtEOF(t *testing.T) {
	for _, method := range readyMethods {
		t.Run(method, func(t *testing.T) {
			ctx := newAfterFuncCtx()
			var seen context.Context // the attempt's
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				seen = req.Context()
				return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("hello")), Request: req}, nil
			})
			tr := New(base)
			resp, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://a.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := resp.Body.Read(make([]byte, 2)); err != nil {
				t.Fatal(err)
			}
			if seen == ctx || seen.Err() != nil {
				t.Fatalf("the attempt's context is the caller's or done (%v) while the body is being read", seen.Err())
			}
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "llo" {
				t.Fatalf("ReadAll = %q, %v; want \"llo\", nil", b, err)
			}
			if n := ctx.numLive(); n != 0 || seen.Err() == nil {
				t.Errorf("once the body was read to its end: %d attempt contexts registered, the attempt's Err() = %v; want 0, context.Canceled", n, seen.Err())
			}
			resp.Body.Close()
			if n := ctx.numLive(); n != 0 {
				t.Errorf("%d attempt contexts live after the body is closed", n)
			}
		})
	}
}
