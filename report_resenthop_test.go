package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestReportResentHopIsACallOfItsOwn: the request of a hop that the caller
// sends again (the Request of the response a redirected call ended with,
// whose Response is still the redirect, as a poller that sends it anew
// has it) is a call of its own, as its budget is
// (TestRedirectHopReusedHasItsOwnBudget): its Report tells that call, one
// attempt and no redirect, instead of adding it to the chain's. With a
// budget or without one. Before, each send added one redirect and its
// attempts to the Report: after two polls, 3 redirects and 4 attempts
// for a call that made one.
func TestReportResentHopIsACallOfItsOwn(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"budget", nil},
		{"no budget", []Option{WithMaxElapsed(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &rtScript{steps: []rtStep{{status: http.StatusFound, header: http.Header{"Location": {"/b"}}}, {status: 200}}}
				var r Report
				ctx := WithReport(context.Background(), &r)
				client := &http.Client{Transport: New(s, tc.opts...)}
				resp, err := client.Do(newRequest(t, ctx, http.MethodGet, "http://api.test/a", nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if want := (Report{Attempts: 2, Redirects: 1, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
					t.Fatalf("Report of the redirected call = %+v, want %+v", r, want)
				}
				hop := resp.Request
				for i := range 2 {
					resp, err := client.Do(hop)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if want := (Report{Attempts: 1, Outcome: OutcomeSuccess, StatusCode: 200}); r != want {
						t.Errorf("Report of the hop's request sent again (%d) = %+v, want %+v", i+1, r, want)
					}
				}
				if got := s.numCalls(); got != 4 {
					t.Errorf("requests sent = %d, want 4", got)
				}
			})
		})
	}
}
