package resilientotel

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TestRedirectHopBudgetSpentIsTimeout: the hop of a redirect returned as
// the call's budget (WithMaxElapsed) ended fails before any attempt with
// the budget's timeout: its call's span has error.type timeout, as a call
// whose last attempt the budget cut has, not canceled, which says that the
// caller's context ended.
func TestRedirectHopBudgetSpentIsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: http.StatusFound, location: "/b"}, {status: http.StatusOK}}}
		slowObserver := func(a resilient.Attempt) {
			if a.StatusCode == http.StatusFound {
				time.Sleep(11 * time.Second) // past the budget: the hop is left nothing
			}
		}
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithMaxElapsed(10*time.Second),
			resilient.WithObserver(slowObserver))
		req, _ := http.NewRequest("GET", "http://api.test/a", nil)
		if _, err := do(t, &http.Client{Transport: tr}, req); !errors.Is(err, resilient.ErrAttemptTimeout) {
			t.Fatalf("err %v, want the budget's timeout", err)
		}
		if got := len(base.headers); got != 1 {
			t.Errorf("%d requests sent, want 1", got)
		}
		calls := tel.ended(int(trace.SpanKindInternal))
		if len(calls) != 2 {
			t.Fatalf("%d calls, want 2", len(calls))
		}
		hop := calls[1]
		if a := attrs(hop.Attributes()); a["error.type"] != "timeout" || hop.Status().Code != codes.Error || hop.Status().Description != "timeout" {
			t.Errorf("spent hop: error.type %q, status %v; want timeout", a["error.type"], hop.Status())
		}
	})
}
