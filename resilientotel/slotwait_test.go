package resilientotel

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/trace"
)

// gate is a base RoundTripper whose requests to /hold wait until open is
// closed; the others answer at once.
type gate struct{ open chan struct{} }

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/hold" {
		<-g.open
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// TestSlotWait: an attempt that waits for a slot of its host
// (resilient.WithMaxInFlight) has that wait on its call's INTERNAL span, a
// resilient.wait event of kind max_in_flight from the attempt's start, and
// in resilient.client.call.wait.duration, as Report.Waited has it; a call
// that found a free slot has neither.
func TestSlotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		g := &gate{open: make(chan struct{})}
		tr := resilient.New(g, Instrument(tel.config()), resilient.WithMaxInFlight(1))
		client := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://api.test/hold", nil)
			do(t, client, req)
		})
		synctest.Wait()
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://api.test/late", nil)
			do(t, client, req)
		})
		synctest.Wait()
		time.Sleep(3 * time.Second)
		close(g.open)
		wg.Wait()

		calls := tel.ended(int(trace.SpanKindInternal))
		if len(calls) != 2 {
			t.Fatalf("%d calls, want 2", len(calls))
		}
		for _, c := range calls {
			evs := c.Events()
			if c.Name() == "" || len(evs) > 1 {
				t.Fatalf("call events %v", eventNames(evs))
			}
			if attrs(c.Attributes())["url.full"] == "http://api.test/hold" {
				if len(evs) != 0 {
					t.Errorf("the holder's events %v, want none", eventNames(evs))
				}
				continue
			}
			if len(evs) != 1 {
				t.Fatalf("the waiter's events %v, want one wait", eventNames(evs))
			}
			ev := evs[0]
			wantAttrs(t, "slot wait", ev.Attributes, map[string]string{
				"resilient.wait.kind": WaitMaxInFlight, "resilient.wait.duration": "3", "resilient.attempt.number": "1"})
			if ev.Name != EventWait || !ev.Time.Equal(c.StartTime()) {
				t.Errorf("event %s at %v, want %s at the call's start %v", ev.Name, ev.Time, EventWait, c.StartTime())
			}
		}
		if n, sum := total(t, tel.metrics(t), MetricCallWait); n != 1 || sum != 3 {
			t.Errorf("%s: %v waits, %vs; want 1 of 3s", MetricCallWait, n, sum)
		}
	})
}
