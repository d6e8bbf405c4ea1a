package resilientotel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// These tests drive a Transport over a base that declines attempts with
// http.ErrSkipAltProtocol, as an alternate protocol's RoundTripper
// registered with http.Transport.RegisterProtocol does (golang.org/x/net/
// http2's, without a connection to the host): nothing is sent, and the
// bare sentinel makes the http.Transport above send the request itself.

// answer returns a response of status to r, as a base that sent it gets.
func answer(r *http.Request, status int) (*http.Response, error) {
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r,
	}, nil
}

// wantDeclinedSpan fails unless s, the CLIENT span of an attempt the base
// declined, is no failure: an Unset status, no error.type, no status code,
// and resilient.declined.
func wantDeclinedSpan(t *testing.T, what string, s sdktrace.ReadOnlySpan) {
	t.Helper()
	a := attrs(s.Attributes())
	if s.Status().Code != codes.Unset || a["error.type"] != "" || a["http.response.status_code"] != "" {
		t.Errorf("%s: status %v, error.type %q, status code %q; want Unset, none, none: the base declined it, nothing was sent",
			what, s.Status(), a["error.type"], a["http.response.status_code"])
	}
	if a[string(AttrDeclined)] != "true" {
		t.Errorf("%s: %s = %q, want true (attributes %v)", what, AttrDeclined, a[string(AttrDeclined)], a)
	}
}

// durationSets returns the attribute sets of http.client.request.duration,
// encoded.
func durationSets(t *testing.T, tel *telemetry) []string {
	t.Helper()
	m, ok := tel.metrics(t)["http.client.request.duration"]
	if !ok {
		return nil
	}
	return sortedKeys(histogramPoints(t, m))
}

// TestAltProtocolDeclinedCallIsNoFailure: a call whose base declines it
// with the bare sentinel, which net/http's http.Transport above then sends
// itself (the caller gets the server's 200, as with the base alone), is no
// failure of the host: its CLIENT span, of a request never sent, and its
// call span are not errors, and http.client.request.duration counts no
// request.
func TestAltProtocolDeclinedCallIsNoFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	tel := newTelemetry()
	var asked atomic.Int32
	alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		asked.Add(1)
		return nil, http.ErrSkipAltProtocol
	})
	outer := &http.Transport{}
	defer outer.CloseIdleConnections()
	outer.RegisterProtocol("http", resilient.New(alt, Instrument(tel.config())))
	req, _ := http.NewRequest("GET", srv.URL, nil)
	status, err := do(t, &http.Client{Transport: outer}, req)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET = %d, %v; want the 200 net/http got itself", status, err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the base was asked %d times, want 1", n)
	}
	clients := tel.ended(int(trace.SpanKindClient))
	if len(clients) != 1 {
		t.Fatalf("%d CLIENT spans, want 1", len(clients))
	}
	wantDeclinedSpan(t, "the declined attempt", clients[0])
	call := tel.ended(int(trace.SpanKindInternal))[0]
	if a := attrs(call.Attributes()); call.Status().Code != codes.Unset || a["error.type"] != "" || a[string(AttrDeclined)] != "true" {
		t.Errorf("call span: status %v, error.type %q, %s %q; want Unset, none, true: net/http sends the request itself",
			call.Status(), a["error.type"], AttrDeclined, a[string(AttrDeclined)])
	}
	if sets := durationSets(t, tel); len(sets) != 0 {
		t.Errorf("http.client.request.duration recorded %v; want nothing: no request was sent", sets)
	}
	for _, set := range attributeSets(tel.metrics(t)[MetricCallDuration]) {
		if v, ok := set.Value("error.type"); ok {
			t.Errorf("%s has error.type %q; want none", MetricCallDuration, v.AsString())
		}
	}
}

// TestAltProtocolDeclinedRetryIsNoFailure: a retry of a 503 that the base
// declines was never sent (the call returns the 503): its CLIENT span is
// no error, and http.client.request.duration counts the 503 alone.
func TestAltProtocolDeclinedRetryIsNoFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				return answer(r, http.StatusServiceUnavailable)
			}
			return nil, http.ErrSkipAltProtocol
		})
		tr := resilient.New(alt, resilient.WithBackoff(0, 0), resilient.WithMaxRetries(1), Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		if status, err := do(t, &http.Client{Transport: tr}, req); status != http.StatusServiceUnavailable {
			t.Fatalf("GET = %d, %v; want the 503", status, err)
		}
		clients := tel.ended(int(trace.SpanKindClient))
		if len(clients) != 2 {
			t.Fatalf("%d CLIENT spans, want 2", len(clients))
		}
		wantDeclinedSpan(t, "the declined retry", clients[1])
		if sets := durationSets(t, tel); len(sets) != 1 || !strings.Contains(sets[0], "error.type=503") {
			t.Errorf("http.client.request.duration recorded %v; want the 503 alone", sets)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if a := attrs(call.Attributes()); a["error.type"] != "503" || a[string(AttrDeclined)] != "" {
			t.Errorf("call span: error.type %q, %s %q; want 503 and no %s: the call returned the 503",
				a["error.type"], AttrDeclined, a[string(AttrDeclined)], AttrDeclined)
		}
	})
}

// TestAltProtocolDeclinedRetryKeepsTheError: a read reset by the host whose
// retry the base declines ends with the reset (and the sentinel, wrapped):
// the call's error.type is connection_reset, what the host did, not the
// _OTHER of a retry never sent.
func TestAltProtocolDeclinedRetryKeepsTheError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			}
			return nil, http.ErrSkipAltProtocol
		})
		tr := resilient.New(alt, resilient.WithBackoff(0, 0), resilient.WithMaxRetries(1), Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		if _, err := tr.RoundTrip(req); err == nil || err == http.ErrSkipAltProtocol {
			t.Fatalf("GET = %v; want the reset", err)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if a := attrs(call.Attributes()); a["error.type"] != "connection_reset" || call.Status().Code != codes.Error {
			t.Errorf("call span: error.type %q, status %v; want connection_reset, Error", a["error.type"], call.Status())
		}
		for _, set := range attributeSets(tel.metrics(t)[MetricCallDuration]) {
			if v, _ := set.Value("error.type"); v.AsString() != "connection_reset" {
				t.Errorf("%s: error.type %q, want connection_reset", MetricCallDuration, v.AsString())
			}
		}
		if sets := durationSets(t, tel); len(sets) != 1 || !strings.Contains(sets[0], "error.type=connection_reset") {
			t.Errorf("http.client.request.duration recorded %v; want the reset alone", sets)
		}
	})
}

// TestAltProtocolDeclinedCopyIsNoHedge: a hedged copy the base declines was
// never sent: no resilient.hedge event, its CLIENT span no error, and
// http.client.request.duration counts the attempt's 200 alone.
func TestAltProtocolDeclinedCopyIsNoHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the copy
			}
			time.Sleep(50 * time.Millisecond) // the attempt, slow: a copy is launched
			return answer(r, http.StatusOK)
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 10 * time.Millisecond}), Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		if status, err := do(t, &http.Client{Transport: tr}, req); status != http.StatusOK {
			t.Fatalf("GET = %d, %v; want 200", status, err)
		}
		if n := asked.Load(); n != 2 {
			t.Fatalf("the base was asked %d times, want 2", n)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if got := eventNames(call.Events()); len(got) != 0 {
			t.Errorf("call events %v; want none: the copy was never sent", got)
		}
		var declined int
		for _, s := range tel.ended(int(trace.SpanKindClient)) {
			if attrs(s.Attributes())["http.response.status_code"] != "200" {
				declined++
				wantDeclinedSpan(t, "the declined copy", s)
			}
		}
		if declined != 1 {
			t.Errorf("%d CLIENT spans of the declined copy, want 1", declined)
		}
		if sets := durationSets(t, tel); len(sets) != 1 || strings.Contains(sets[0], "error.type") {
			t.Errorf("http.client.request.duration recorded %v; want the 200 alone", sets)
		}
	})
}

// TestAltProtocolDeclinedCopyThenSent: of two hedged copies, the first
// declined and the second sent, the call's span has one resilient.hedge
// event, of hedge 1, at the time the second was sent.
func TestAltProtocolDeclinedCopyThenSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the attempt, slow
				select {
				case <-time.After(100 * time.Millisecond):
				case <-r.Context().Done():
					return nil, context.Cause(r.Context())
				}
			case 2: // the first copy, at 10ms: declined
				return nil, http.ErrSkipAltProtocol
			}
			return answer(r, http.StatusOK)
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 10 * time.Millisecond, MaxHedges: 2}),
			Instrument(tel.config()))
		t0 := time.Now()
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		if status, err := do(t, &http.Client{Transport: tr}, req); status != http.StatusOK {
			t.Fatalf("GET = %d, %v; want 200", status, err)
		}
		synctest.Wait()
		call := tel.ended(int(trace.SpanKindInternal))[0]
		evs := call.Events()
		if len(evs) != 1 || evs[0].Name != EventHedge {
			t.Fatalf("call events %v; want one resilient.hedge", eventNames(evs))
		}
		if a := attrs(evs[0].Attributes); a[string(AttrHedge)] != "1" || a[string(AttrAttemptNumber)] != "1" {
			t.Errorf("hedge event %v; want hedge 1 of attempt 1", a)
		}
		if at := evs[0].Time.Sub(t0); at != 20*time.Millisecond {
			t.Errorf("hedge event at %v, want 20ms, when the copy was sent", at)
		}
	})
}

// TestAltProtocolDeclinedCopyInFlightAtEnd: a hedged copy still in flight
// when the call returns (a base blind to its context, which runs on) has
// its resilient.hedge event on the call's span: it was sent as far as
// anyone knows, and the span, ended, takes no event later.
func TestAltProtocolDeclinedCopyInFlightAtEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		release := make(chan struct{})
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				<-release // the copy, blind to its context
				return answer(r, http.StatusOK)
			}
			time.Sleep(50 * time.Millisecond)
			return answer(r, http.StatusOK)
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 10 * time.Millisecond}), Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		status, err := do(t, &http.Client{Transport: tr}, req)
		close(release)
		synctest.Wait()
		if status != http.StatusOK {
			t.Fatalf("GET = %d, %v; want 200", status, err)
		}
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if got := eventNames(call.Events()); len(got) != 1 || got[0] != EventHedge {
			t.Errorf("call events %v; want one resilient.hedge", got)
		}
	})
}

// TestAltProtocolDeclinedCopyResendCount: the request that follows a
// redirect counts the requests sent before it in its resend_count: the
// attempt that got the 302, not its hedged copy, which the base declined.
func TestAltProtocolDeclinedCopyResendCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the attempt, slow: a copy is launched; then 302
				time.Sleep(50 * time.Millisecond)
				resp, _ := answer(r, http.StatusFound)
				resp.Header.Set("Location", "/b")
				return resp, nil
			case 2: // its copy, declined
				return nil, http.ErrSkipAltProtocol
			}
			return answer(r, http.StatusOK)
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 10 * time.Millisecond}), Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/a", nil)
		if status, err := do(t, &http.Client{Transport: tr}, req); status != http.StatusOK {
			t.Fatalf("GET = %d, %v; want 200", status, err)
		}
		var got []string
		for _, s := range tel.ended(int(trace.SpanKindClient)) {
			a := attrs(s.Attributes())
			if a["http.response.status_code"] == "200" {
				got = append(got, a["http.request.resend_count"])
			}
		}
		if len(got) != 1 || got[0] != "1" {
			t.Errorf("resend_count of the request after the redirect: %q; want \"1\" (one request sent before it)", got)
		}
	})
}

// TestAltProtocolWrappedIsAFailure: the sentinel wrapped, by a middleware
// or by a Transport below whose retry the base declined after its first
// attempt was sent, is an error net/http does not act on: the call fails,
// the root counts it as an error that may have been sent, and so do the
// spans (error.type _OTHER).
func TestAltProtocolWrappedIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("h2 middleware: %w", http.ErrSkipAltProtocol)
		})
		tr := resilient.New(alt, Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Fatal("GET succeeded; want the wrapped sentinel")
		}
		for _, s := range tel.ended() {
			a := attrs(s.Attributes())
			if s.Status().Code != codes.Error || a["error.type"] != errOther || a[string(AttrDeclined)] != "" {
				t.Errorf("%v span: status %v, error.type %q, %s %q; want Error, _OTHER, none",
					s.SpanKind(), s.Status(), a["error.type"], AttrDeclined, a[string(AttrDeclined)])
			}
		}
		if sets := durationSets(t, tel); len(sets) != 1 || !strings.Contains(sets[0], "error.type=_OTHER") {
			t.Errorf("http.client.request.duration recorded %v; want one _OTHER", sets)
		}
	})
}

// TestAltProtocolDeclinedAfterACopySent: a keyed write whose attempt the
// base declines late, after its hedged copy was sent and lost, does not
// end with the bare sentinel (the host may have processed the copy): the
// call is a failure, its copy a hedge sent, and the attempt itself, never
// sent, no failure of the host.
func TestAltProtocolDeclinedAfterACopySent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		copySent := make(chan struct{})
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				<-copySent
				return nil, http.ErrSkipAltProtocol // the attempt itself, declined late
			}
			close(copySent) // the copy, sent
			<-r.Context().Done()
			return nil, context.Cause(r.Context())
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 50 * time.Millisecond, MaxHedges: 1}),
			resilient.WithKeyHonoringHosts("api.test"), Instrument(tel.config()))
		req, _ := http.NewRequest("POST", "http://api.test/charges", strings.NewReader(`{"amount":1}`))
		if _, err := tr.RoundTrip(req); err == nil || err == http.ErrSkipAltProtocol {
			t.Fatalf("POST = %v; want an error other than the bare sentinel", err)
		}
		synctest.Wait()
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if a := attrs(call.Attributes()); call.Status().Code != codes.Error || a[string(AttrDeclined)] != "" {
			t.Errorf("call span: status %v, %s %q; want Error, none", call.Status(), AttrDeclined, a[string(AttrDeclined)])
		}
		if got := eventNames(call.Events()); len(got) != 1 || got[0] != EventHedge {
			t.Errorf("call events %v; want one resilient.hedge: the copy was sent", got)
		}
		for _, s := range tel.ended(int(trace.SpanKindClient)) {
			a := attrs(s.Attributes())
			switch a["http.request.resend_count"] {
			case "": // the attempt
				wantDeclinedSpan(t, "the declined attempt", s)
			default: // the copy
				if a["error.type"] != errCanceled {
					t.Errorf("the lost copy: error.type %q, want canceled", a["error.type"])
				}
			}
		}
	})
}

// TestAltProtocolDeclinedReadAfterACopySent: a read whose attempt the base
// declines late, after its hedged copy was sent and lost, ends with the
// bare sentinel (a read may be sent again: net/http sends it itself): the
// call is no failure, and its copy, sent, a hedge.
func TestAltProtocolDeclinedReadAfterACopySent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry()
		copySent := make(chan struct{})
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				<-copySent
				return nil, http.ErrSkipAltProtocol // the attempt itself, declined late
			}
			close(copySent) // the copy, sent
			<-r.Context().Done()
			return nil, context.Cause(r.Context())
		})
		tr := resilient.New(alt, resilient.WithHedging(resilient.Hedging{Delay: 50 * time.Millisecond, MaxHedges: 1}),
			Instrument(tel.config()))
		req, _ := http.NewRequest("GET", "http://api.test/items", nil)
		if _, err := tr.RoundTrip(req); err != http.ErrSkipAltProtocol {
			t.Fatalf("GET = %v; want the bare sentinel", err)
		}
		synctest.Wait()
		call := tel.ended(int(trace.SpanKindInternal))[0]
		if a := attrs(call.Attributes()); call.Status().Code != codes.Unset || a["error.type"] != "" || a[string(AttrDeclined)] != "true" {
			t.Errorf("call span: status %v, error.type %q, %s %q; want Unset, none, true",
				call.Status(), a["error.type"], AttrDeclined, a[string(AttrDeclined)])
		}
		if got := eventNames(call.Events()); len(got) != 1 || got[0] != EventHedge {
			t.Errorf("call events %v; want one resilient.hedge: the copy was sent", got)
		}
	})
}
