package resilientotel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestCanceledRetryWaitEvent: a caller who gives up while the call waits
// out a server's Retry-After leaves on the call's span the wait that
// passed, as Report.Waited and the wait metric have it: not the wait the
// server asked for. (The event had the whole planned wait, 10.95s of a
// Retry-After of 10 and its jitter, for a call canceled after 1s.)
func TestCanceledRetryWaitEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 503, header: http.Header{"Retry-After": {"10"}}}, {status: 200}}}
		tr := resilient.New(base, Instrument(tel.config()))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(time.Second, cancel)
		var rep resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(ctx, &rep), "GET", "https://api.test/v1", nil)
		if _, err := do(t, &http.Client{Transport: tr}, req); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want canceled", err)
		}
		if n := len(base.sent("Traceparent")); n != 1 || rep.Waited != time.Second {
			t.Fatalf("%d requests, waited %v; want 1, and the 1s before the cancel", n, rep.Waited)
		}
		call, w := oneRetryWait(t, tel)
		if got := w[string(AttrWaitDuration)]; got != "1" || got != attrs(call.Attributes())[string(AttrWaitDuration)] {
			t.Errorf("wait event %v, want the 1s that passed, as the call's %s", w, AttrWaitDuration)
		}
		if n, sum := total(t, tel.metrics(t), MetricCallWait); n != 1 || sum != 1 {
			t.Errorf("%s: %v waits, %vs; want 1 of 1s", MetricCallWait, n, sum)
		}
	})
}

// TestResetRetryWaitEvent: a wait for a Retry-After that ResetHost ends
// early is on the call's span as long as it lasted, before the retry it
// let go.
func TestResetRetryWaitEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		base := &stub{steps: []step{{status: 503, header: http.Header{"Retry-After": {"10"}}}, {status: 200}}}
		tr := resilient.New(base, Instrument(tel.config()))
		time.AfterFunc(2*time.Second, func() { tr.ResetHost("api.test") })
		var rep resilient.Report
		req, _ := http.NewRequestWithContext(resilient.WithReport(context.Background(), &rep), "GET", "https://api.test/v1", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		if rep.Waited != 2*time.Second {
			t.Fatalf("waited %v, want the 2s before the reset", rep.Waited)
		}
		_, w := oneRetryWait(t, tel)
		if w[string(AttrWaitDuration)] != "2" || w[string(AttrAttemptNumber)] != "2" {
			t.Errorf("wait event %v, want the 2s before attempt 2", w)
		}
	})
}

// oneRetryWait returns the one call span tel recorded, and the attributes
// of its one event, a retry_after wait.
func oneRetryWait(t *testing.T, tel *telemetry) (sdktrace.ReadOnlySpan, map[string]string) {
	t.Helper()
	calls := tel.ended(int(trace.SpanKindInternal))
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	evs := calls[0].Events()
	if got := strings.Join(eventNames(evs), ","); got != "resilient.wait:retry_after" {
		t.Fatalf("call events %s, want one retry_after wait", got)
	}
	return calls[0], attrs(evs[0].Attributes)
}
