package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// explodingBackOff is a BackOff whose call number at of NextBackOff
// panics.
type explodingBackOff struct{ at, n int }

func (b *explodingBackOff) NextBackOff() time.Duration {
	if b.n++; b.n == b.at {
		panic("backoff exploded")
	}
	return time.Millisecond
}

func (b *explodingBackOff) Reset() {}

// explodingFleet is a memFleet whose shared budgets panic in Deposit or in
// Withdraw.
type explodingFleet struct {
	memFleet
	in string // "Deposit" or "Withdraw"
}

func (f *explodingFleet) Budget(name string, b RetryBudget) SharedBudget {
	return explodingBudget{f.memFleet.Budget(name, b), f.in}
}

type explodingBudget struct {
	SharedBudget
	in string
}

func (b explodingBudget) Deposit(tokens float64) {
	if b.in == "Deposit" {
		panic("store exploded")
	}
	b.SharedBudget.Deposit(tokens)
}

func (b explodingBudget) Withdraw(tokens float64) bool {
	if b.in == "Withdraw" {
		panic("store exploded")
	}
	return b.SharedBudget.Withdraw(tokens)
}

// TestPanicInBackOffOrBudgetClosesResponse: a panic in a BackOff (its
// factory, or its NextBackOff as the retry loop decides the wait) or in a
// fleet's SharedBudget (its Deposit as the host answers, or as a retry
// whose body GetBody cannot make gives back what it paid; its Withdraw as
// a retry is paid for) goes to the caller, and the response of the
// attempt being decided, which the caller never sees, is closed on the way
// out, as around an observer or a Classifier (TestPanicClosesResponse):
// its connection would leak with each panic a server recovers from.
func TestPanicInBackOffOrBudgetClosesResponse(t *testing.T) {
	for _, tc := range []struct {
		where  string
		status int  // every attempt's
		at     int  // for a BackOff, the call of NextBackOff that panics; 0 for its factory
		badGB  bool // a PUT whose GetBody fails: the retry paid for is given back
	}{
		{"BackOff", 503, 0, false},
		{"BackOff", 503, 1, false},
		{"BackOff", 503, 2, false},
		{"Deposit", 200, 0, false},
		{"Deposit", 404, 0, false},
		{"Deposit", 503, 0, true},
		{"Withdraw", 503, 0, false},
	} {
		t.Run(fmt.Sprintf("%s %d at %d GetBody fails %v", tc.where, tc.status, tc.at, tc.badGB), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var bodies []*trackedBody
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					b := newTrackedBody(`{}`)
					bodies = append(bodies, b)
					return &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: b, Request: req}, nil
				})
				var opt Option
				if tc.where == "BackOff" {
					opt = WithBackOff(func() backoff.BackOff {
						if tc.at == 0 {
							panic("backoff factory exploded")
						}
						return &explodingBackOff{at: tc.at}
					})
				} else {
					opt = WithQuotaStore(&explodingFleet{in: tc.where})
				}
				tr := New(base, opt)
				req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
				if tc.badGB {
					req = newRequest(t, context.Background(), "PUT", "http://api.test/", strings.NewReader("body"))
					req.Body = streamBody("body") // not in memory: the retry's body is GetBody's
					req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("no more") }
				}
				mustPanic(t, "the panic was not propagated", func() { tr.RoundTrip(req) })
				if len(bodies) == 0 {
					t.Fatal("no attempt was sent")
				}
				for i, b := range bodies {
					if !b.isClosed() {
						t.Errorf("the body of response %d (of %d) was not closed", i+1, len(bodies))
					}
				}
			})
		})
	}
}

// TestPanicInHedgeWithdrawReturnsAllowance: a fleet's SharedBudget whose
// Withdraw panics as a hedged copy is paid for takes the panic to the
// caller, and the copy, never sent, gives back the copy of the host's hedge
// allowance it took first: every slot a layer takes is released on every
// path, panics included. It stayed spent: ten such panics left the host
// no hedge until its calls refilled it, two hundred of them.
func TestPanicInHedgeWithdrawReturnsAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			<-req.Context().Done() // the attempt hangs: its copy is paid for
			return nil, context.Cause(req.Context())
		})
		tr := New(base, WithoutBreaker(), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithQuotaStore(&explodingFleet{in: "Withdraw"}))
		req := newRequest(t, context.Background(), "GET", "http://api.test/", nil)
		mustPanic(t, "the panic of Withdraw did not reach the caller", func() { tr.RoundTrip(req) })
		synctest.Wait()
		const want = hedgeBurst * budgetUnit
		if got := tr.budgets.get(req).hedgeTokens.Load(); got != want {
			t.Errorf("hedge allowance = %v, want %v", got, want)
		}
	})
}
