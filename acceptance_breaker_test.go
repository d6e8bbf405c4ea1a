package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// This file checks issue 5's circuit breaker from outside the package, as
// a user who read the issue would: through the public API and a
// resilienttest server only.

// TestBreakerCountsEvery5xx: issue 5 counts as failures "the Transient
// server outcomes (5xx other than 501 and 505)": a host that answers
// 507, 508, 511, a CDN's 520–524 or a 599 to every call is as sick as
// one that answers 500, even though those statuses are not retried. Three
// in a row trip a breaker set to trip after 3, and the fourth call is
// refused without reaching the server.
func TestBreakerCountsEvery5xx(t *testing.T) {
	for _, status := range []int{506, 507, 508, 510, 511, 520, 522, 524, 599} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const route = "GET /v1/posts"
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithScript(route,
					resilienttest.HTML(status), resilienttest.HTML(status), resilienttest.HTML(status)))
				defer srv.Close()
				tr := resilient.New(srv.Transport(), resilient.WithMaxRetries(0),
					resilient.WithBreaker(resilient.BreakerSettings{ConsecutiveFailures: 3}))
				for i := range 3 {
					if code, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil); code != status {
						t.Fatalf("call %d: %d, %v; want the server's %d", i+1, code, err, status)
					}
				}
				_, _, err := call(t, tr, context.Background(), "GET", srv.URL+"/v1/posts", nil)
				if !errors.Is(err, resilient.ErrCircuitOpen) {
					t.Errorf("after 3 answers %d in a row: err = %v, want ErrCircuitOpen", status, err)
				}
				if got := srv.Stats().Attempts[route]; got != 3 {
					t.Errorf("the server saw %d attempts, want 3", got)
				}
				if st := tr.BreakerState(srv.URL); st != resilient.BreakerOpen {
					t.Errorf("BreakerState = %v, want open", st)
				}
			})
		})
	}
}
