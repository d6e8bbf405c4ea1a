package resilientotel

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/trace"
)

// TestHedgedCopies drives the Tracer as a Transport that hedges does: a
// hedged copy is a CLIENT span of its own, numbered by its resend count,
// marked by an event of the call's span, and counted.
func TestHedgedCopies(t *testing.T) {
	tel := newTelemetry()
	in := newInstrumentation(tel.config())
	var tr resilient.Tracer = in
	req, _ := http.NewRequest("GET", "https://api.test/slow", nil)
	ctx := tr.StartCall(context.Background(), req)
	areq := req.WithContext(ctx)
	first, end1 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1})
	hedge, end2 := tr.StartAttempt(areq, resilient.AttemptInfo{Number: 1, Hedge: 1, ResendCount: 1})
	if first == nil || hedge == nil || end1 == nil || end2 == nil {
		t.Fatal("no request or end function")
	}
	if first.Header.Get("Traceparent") == hedge.Header.Get("Traceparent") || req.Header.Get("Traceparent") != "" {
		t.Errorf("traceparents %q and %q, caller's %q: want one per copy, and the caller's untouched",
			first.Header.Get("Traceparent"), hedge.Header.Get("Traceparent"), req.Header.Get("Traceparent"))
	}
	end2(&http.Response{StatusCode: 200, ProtoMajor: 2, Request: hedge}, nil)
	end1(nil, context.Canceled) // the loser, canceled
	tr.EndCall(ctx, &resilient.Report{Attempts: 2, Hedges: 1, Outcome: resilient.OutcomeSuccess, StatusCode: 200})

	clients := tel.ended(int(trace.SpanKindClient))
	if len(clients) != 2 {
		t.Fatalf("%d CLIENT spans, want 2", len(clients))
	}
	h := attrs(clients[0].Attributes())
	if h["http.request.resend_count"] != "1" || h["network.protocol.version"] != "2" || h["http.response.status_code"] != "200" {
		t.Errorf("hedged copy: %v", h)
	}
	if l := attrs(clients[1].Attributes()); l["error.type"] != "canceled" {
		t.Errorf("the canceled copy: %v", l)
	}
	call := tel.ended(int(trace.SpanKindInternal))[0]
	if got := strings.Join(eventNames(call.Events()), ","); got != "resilient.hedge" {
		t.Errorf("call events %s, want resilient.hedge", got)
	}
	if e := attrs(call.Events()[0].Attributes); e["resilient.hedge"] != "1" || e["resilient.attempt.number"] != "1" {
		t.Errorf("hedge event %v", e)
	}
	if a := attrs(call.Attributes()); a["resilient.hedges"] != "1" {
		t.Errorf("call: %v", a)
	}
	ms := tel.metrics(t)
	if n, _ := total(t, ms, MetricHedges); n != 1 {
		t.Errorf("hedges counted %v, want 1", n)
	}
	if n, _ := total(t, ms, MetricCallRetries); n != 0 {
		t.Errorf("retries recorded %v times, want none: a hedge is no retry", n)
	}
}

// TestHedgedCallRetries: a call through a hedging Transport whose first
// attempt (with its copy) failed and whose retry succeeded has one retry,
// whatever its copies: resilient.attempts counts the copies, and the
// retries metric does not.
func TestHedgedCallRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var n atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			// The attempt: 503 after 200ms; its copy, sent at 50ms:
			// 503 at once; the retry: 200 at once.
			i := n.Add(1) - 1
			status, latency := []int{503, 503, 200}[i], time.Duration(0)
			if i == 0 {
				latency = 200 * time.Millisecond
			}
			select {
			case <-time.After(latency):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithHedging(resilient.Hedging{Delay: 50 * time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		synctest.Wait()
		if got := n.Load(); got != 3 {
			t.Fatalf("%d requests sent, want 3: the attempt, its copy and the retry", got)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if a := attrs(call.Attributes()); a["resilient.attempts"] != "3" || a["resilient.hedges"] != "1" {
			t.Errorf("call: resilient.attempts %s, resilient.hedges %s; want 3 and 1", a["resilient.attempts"], a["resilient.hedges"])
		}
		if n, sum := total(t, tel.metrics(t), MetricCallRetries); n != 1 || sum != 1 {
			t.Errorf("retries: %v calls, %v retries; want 1 and 1", n, sum)
		}
	})
}

// TestUnsentCopyNotCounted: a hedged copy that never reaches the wire (the
// rate limiter refuses it: it would wait for a token) has no
// CLIENT span, no resilient.hedge event, and is counted nowhere: the call
// made one attempt and no hedge. (resilient.hedges and the hedges metric
// counted it, and resilient.attempts with them.)
func TestUnsentCopyNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var n atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n.Add(1)
			time.Sleep(100 * time.Millisecond)
			return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
		})
		// The attempt takes the limiter's one token; its copy, at 20ms,
		// would wait a second for the next.
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithHedging(resilient.Hedging{Delay: 20 * time.Millisecond}),
			resilient.WithRateLimit(1, 1))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		synctest.Wait()
		if got := n.Load(); got != 1 {
			t.Fatalf("%d requests sent, want 1: the copy was refused", got)
		}
		if clients := tel.ended(int(trace.SpanKindClient)); len(clients) != 1 {
			t.Errorf("%d CLIENT spans, want 1", len(clients))
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if got := strings.Join(eventNames(call.Events()), ","); got != "" {
			t.Errorf("call events %s, want none", got)
		}
		if a := attrs(call.Attributes()); a["resilient.attempts"] != "1" || a["resilient.hedges"] != "0" {
			t.Errorf("call: resilient.attempts %s, resilient.hedges %s; want 1 and 0", a["resilient.attempts"], a["resilient.hedges"])
		}
		if n, _ := total(t, tel.metrics(t), MetricHedges); n != 0 {
			t.Errorf("hedges counted %v, want none", n)
		}
	})
}

// TestHedgeLoserCanceled: the copy that lost the race, canceled by the
// Transport, has error.type canceled, as TestHedgedCopies has it, when
// its base returns the context's cause, as net/http does (the
// Transport's own "another copy answered first"): not _OTHER, an unknown
// failure, which every hedged call added to http.client.request.duration.
func TestHedgeLoserCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var n atomic.Int32
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 { // the attempt: slow, canceled once its copy answered
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
		})
		tr := resilient.New(base, Instrument(tel.config()), resilient.WithHedging(resilient.Hedging{Delay: 50 * time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://api.test/", nil)
		if code, err := do(t, &http.Client{Transport: tr}, req); code != 200 || err != nil {
			t.Fatalf("%d, %v", code, err)
		}
		synctest.Wait()
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 2 {
			t.Fatalf("%d CLIENT spans, want 2", len(clients))
		}
		for _, s := range clients {
			a := attrs(s.Attributes())
			if a["http.request.resend_count"] == "" && (a["error.type"] != "canceled" || s.Status().Description != "canceled") {
				t.Errorf("the attempt that lost: error.type %q, status %v; want canceled", a["error.type"], s.Status())
			}
		}
		for p := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
			if strings.Contains(p, "error.type=") && !strings.Contains(p, "error.type=canceled,") {
				t.Errorf("http.client.request.duration point %s, want the loser's error.type canceled", p)
			}
		}
	})
}
