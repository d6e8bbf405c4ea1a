package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestAltProtocolSkipParity: a Transport registered with
// http.Transport.RegisterProtocol over a base that declines requests with
// http.ErrSkipAltProtocol (as golang.org/x/net/http2's
// noDialH2RoundTripper does while it has no connection to the host) lets
// the http.Transport send each request itself, as the base alone does:
// net/http compares the sentinel with ==, so it is returned as it is, at
// once, never retried, and the host's breaker does not count it.
func TestAltProtocolSkipParity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	}))
	defer srv.Close()
	for _, name := range []string{"plain", "resilient"} {
		t.Run(name, func(t *testing.T) {
			var asked atomic.Int32
			alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				asked.Add(1)
				return nil, http.ErrSkipAltProtocol // its body untouched, as http2's
			})
			outer := &http.Transport{}
			defer outer.CloseIdleConnections()
			var rt http.RoundTripper = alt
			var tr *Transport
			if name == "resilient" {
				tr = New(alt, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				rt = tr
			}
			outer.RegisterProtocol("http", rt)
			client := &http.Client{Transport: outer}
			for _, c := range []struct {
				method, body string
				getBody      bool
			}{
				{"GET", "", false},
				{"GET", "", false},
				{"POST", "with GetBody", true},
				{"POST", "without GetBody", false},
			} {
				asked.Store(0)
				var body io.Reader
				switch {
				case c.getBody:
					body = strings.NewReader(c.body)
				case c.body != "":
					body = io.MultiReader(strings.NewReader(c.body))
				}
				req, _ := http.NewRequest(c.method, srv.URL, body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s = %v; want the answer of the outer transport, as a plain client gets", c.method, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := c.method + " " + c.body; resp.StatusCode != 200 || string(b) != want {
					t.Errorf("%s answer = %d %q, want 200 %q (the whole body sent)", c.method, resp.StatusCode, b, want)
				}
				if n := asked.Load(); n != 1 {
					t.Errorf("%s: the alternate base was asked %d times, want 1", c.method, n)
				}
			}
			if tr != nil {
				if s := tr.BreakerState(srv.URL); s != BreakerClosed {
					t.Errorf("breaker %v after the base declined, want closed", s)
				}
			}
		})
	}
}

// TestAltProtocolSkipAfterAnAnswer: a keyed write whose first attempt the
// host answered with a 503 (which it may have processed) and whose retry
// the alternate protocol's base declines with http.ErrSkipAltProtocol ends
// with that 503, as a plain client over the base ends: the sentinel,
// returned bare, made the http.Transport above send the caller's write
// again itself, without the key the Transport stamped, to a host that may
// have processed it.
func TestAltProtocolSkipAfterAnAnswer(t *testing.T) {
	var hits, keyless atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Idempotency-Key") == "" {
			keyless.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	inner := &http.Transport{}
	defer inner.CloseIdleConnections()
	var asked atomic.Int32
	alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if asked.Add(1) == 1 {
			return inner.RoundTrip(r) // a connection to the host, at first
		}
		return nil, http.ErrSkipAltProtocol // then none
	})
	tr := New(alt, WithBackoff(0, 0), WithMaxRetries(1), WithKeyHonoringHosts(u.Host))
	outer := &http.Transport{}
	defer outer.CloseIdleConnections()
	outer.RegisterProtocol("http", tr)
	client := &http.Client{Transport: outer}
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"amount":1}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST = %v; want the 503 the host answered, as a plain client gets", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST = %d, want 503", resp.StatusCode)
	}
	if n, k := hits.Load(), keyless.Load(); n != 1 {
		t.Errorf("the host got the write %d times (%d without a key), want once: the 503 may have been processed", n, k)
	}
}

// TestAltProtocolSkipAfterAnError: a read whose first attempt failed on
// the network and whose retry the alternate protocol's base declines ends
// with both errors: the network's is what the host did, as a plain client
// over the base ends with it, and the sentinel alone would tell nothing.
func TestAltProtocolSkipAfterAnError(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	var asked atomic.Int32
	alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if asked.Add(1) == 1 {
			return nil, reset
		}
		return nil, http.ErrSkipAltProtocol
	})
	tr := New(alt, WithBackoff(0, 0), WithMaxRetries(1))
	req, _ := http.NewRequest("GET", "http://api.example/v1/items", nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("GET = %v; want it to wrap the first attempt's reset", err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the base was asked %d times, want 2", n)
	}
}

// TestAltProtocolSkipAfterAHedgedCopy: a keyed write to a host that
// deduplicates, hedged, whose hedged copy was sent and lost (canceled
// after the hedging delay, unanswered) while the base declined the
// attempt itself with http.ErrSkipAltProtocol, does not end with the bare
// sentinel: the http.Transport above would send the caller's write once
// more, without the key the Transport stamped, after a copy the host may
// have processed.
func TestAltProtocolSkipAfterAHedgedCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		copySent := make(chan struct{})
		var calls atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				<-copySent
				return nil, http.ErrSkipAltProtocol // the attempt itself, declined late
			}
			close(copySent) // the copy, sent: the host may process it
			<-r.Context().Done()
			return nil, context.Cause(r.Context())
		})
		tr := New(alt, WithHedging(Hedging{Delay: 50 * time.Millisecond, MaxHedges: 1}), WithKeyHonoringHosts("api.test"))
		req, _ := http.NewRequest("POST", "http://api.test/charges", strings.NewReader(`{"amount":1}`))
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if err == http.ErrSkipAltProtocol {
			t.Errorf("POST = the bare %v after a hedged copy of the write may have been processed; want an error the http.Transport above does not resend on", err)
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("the base was asked %d times, want 2", n)
		}
	})
}

// TestAltProtocolSkipWrapped: a base that declines requests with
// http.ErrSkipAltProtocol wrapped by a middleware (fmt.Errorf("…: %w"), as
// a logging or tracing RoundTripper does) has declined the request before
// sending it, as the bare sentinel says: a plain client over it fails at
// once, the base asked once. The Transport retried it as an unknown error,
// six times over its backoff, and counted each against the host's breaker,
// which opened on a host that never got a request.
func TestAltProtocolSkipWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			asked.Add(1)
			return nil, fmt.Errorf("h2 middleware: %w", http.ErrSkipAltProtocol)
		})
		tr := New(alt, WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		for i := range 2 {
			asked.Store(0)
			req, _ := http.NewRequest("GET", "http://a.test/", nil)
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, http.ErrSkipAltProtocol) {
				t.Errorf("call %d: err = %v, want the base's declining error", i+1, err)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("call %d: the base was asked %d times, want 1 (a plain client's once)", i+1, n)
			}
		}
		if s := tr.BreakerState("http://a.test/"); s != BreakerClosed {
			t.Errorf("breaker %v after the base declined, want closed", s)
		}
	})
}

// TestAltProtocolSkipWrappedAfterAnAnswer: a GET answered 503 whose retry
// the base declines with the wrapped sentinel ends with that 503, as a
// retry refused does and as a plain client over the base ends: it was
// retried as an unknown error until the retries ran out, and the call
// ended with the base's error, the 503 thrown away.
func TestAltProtocolSkipWrappedAfterAnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 1 {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
					Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
			}
			return nil, fmt.Errorf("h2 middleware: %w", http.ErrSkipAltProtocol)
		})
		tr := New(alt)
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("GET = %v; want the 503 the host answered", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET = %d, want 503", resp.StatusCode)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("the base was asked %d times, want 2 (the 503, then the declined retry)", n)
		}
	})
}

// TestAltProtocolSkipRetryCostsNoBudget: a retry the base declines with
// http.ErrSkipAltProtocol is not sent after all, and ends the call as a
// retry refused does: it gives back the retry budget it spent (see
// RetryBudget), so the host's next call that gets a 503 is retried as it
// would have been. The declined retry kept its token: with a Burst of 1,
// the next call's 503 was returned without a retry.
func TestAltProtocolSkipRetryCostsNoBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the first call's retry
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		tr := New(alt, WithMaxRetries(1), WithRetryBudget(RetryBudget{Burst: 1}))
		for i := range 2 {
			req, _ := http.NewRequest("GET", "http://a.test/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("call %d: %v; want the 503", i+1, err)
			}
			resp.Body.Close()
		}
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4 (each call's 503 and its retry: the declined one spent no budget)", n)
		}
	})
}

// TestAltProtocolSkipHedgedCopyGivesBack: a hedged copy of a GET that the
// base declines with http.ErrSkipAltProtocol never reached the wire, as a
// copy the breaker refuses: it gives back the retry budget it spent (see
// Hedging). It kept its token: with a Burst of 1, the host's next 503 was
// returned without its retry.
func TestAltProtocolSkipHedgedCopyGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the first call's attempt, slow: a copy is sent
				time.Sleep(50 * time.Millisecond)
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			case 2: // its copy, declined
				return nil, http.ErrSkipAltProtocol
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		tr := New(alt, WithMaxRetries(1), WithRetryBudget(RetryBudget{Burst: 1}),
			WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		req, _ = http.NewRequest("GET", "http://a.test/", nil)
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("second call: %v; want the 503", err)
		}
		resp.Body.Close()
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4 (the second call's 503 retried: the declined copy spent no budget)", n)
		}
	})
}

// TestAltProtocolSkipHedgedCopyNotCounted: a hedged copy that the base
// declines with http.ErrSkipAltProtocol was never sent (net/http does not
// send a copy it never saw): it is no hedge, not counted in the Report nor
// in the attempt's record, as Hedging says of a copy that never reaches
// the wire.
func TestAltProtocolSkipHedgedCopyNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the copy, declined
			}
			time.Sleep(50 * time.Millisecond) // the attempt, slow: a copy is launched
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithObserver(obs.add))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://a.test/", nil)
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := asked.Load(); n != 2 {
			t.Fatalf("the base was asked %d times, want 2 (the attempt, its declined copy)", n)
		}
		if rep.Hedges != 0 || rep.Attempts != 1 {
			t.Errorf("Report: %d attempts, %d hedges; want 1 attempt, 0 hedges: the declined copy was never sent", rep.Attempts, rep.Hedges)
		}
		if as := obs.all(); len(as) != 1 || as[0].Hedges != 0 || as[0].Hedge != 0 {
			t.Errorf("records %+v; want one, with no hedge", as)
		}
	})
}

// TestAltProtocolSkipHedgedCopyLetsNextGo: a hedged copy that the base
// declines says nothing of the host, as a copy a layer refused: it does
// not stop the attempt's later copies (MaxHedges), and the copy sent after
// it is hedge 1, the first sent.
func TestAltProtocolSkipHedgedCopyLetsNextGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 2}), WithObserver(obs.add))
		var rep Report
		req := newRequest(t, WithReport(context.Background(), &rep), "GET", "http://a.test/", nil)
		t0 := time.Now()
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(t0); d != 20*time.Millisecond {
			t.Errorf("answered after %v, want 20ms (the second copy's answer)", d)
		}
		if n := asked.Load(); n != 3 {
			t.Errorf("the base was asked %d times, want 3 (the attempt, the declined copy, the copy sent)", n)
		}
		if rep.Hedges != 1 || rep.Attempts != 2 {
			t.Errorf("Report: %d attempts, %d hedges; want 2 attempts, 1 hedge", rep.Attempts, rep.Hedges)
		}
		if as := obs.all(); len(as) != 1 || as[0].Hedge != 1 || as[0].Hedges != 1 {
			t.Errorf("records %+v; want one answered by hedge 1 of 1", as)
		}
	})
}

// TestAltProtocolSkipRetryCostsNoTurn: a retry that the base declines with
// http.ErrSkipAltProtocol was never sent, and the call ends with the
// answer before it: it gives back the turn of the host's pace
// (WithRateLimit) it took, as an attempt a layer below refuses does, and
// the host's next call goes at once, not a turn later.
func TestAltProtocolSkipRetryCostsNoTurn(t *testing.T) {
	declinedRetryCostsNoTurn(t, func(t *testing.T) *http.Request {
		return newRequest(t, context.Background(), "GET", "http://a.test/", nil)
	})
}

// declinedRetryCostsNoTurn makes two calls of newReq's request through a
// Transport paced at one call a second whose base answers each first
// attempt with a 503 and declines the first call's retry, and checks that
// the second call's first attempt waited for no turn of the pace.
func declinedRetryCostsNoTurn(t *testing.T, newReq func(*testing.T) *http.Request) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if asked.Add(1) == 2 {
				return nil, http.ErrSkipAltProtocol // the first call's retry
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithBackoff(time.Second, time.Second), WithMaxRetries(1), WithRateLimit(1, 1), WithObserver(obs.add))
		for i := range 2 {
			resp, err := roundTrip(t, tr, newReq(t))
			if err != nil {
				t.Fatalf("call %d: %v; want the 503", i+1, err)
			}
			resp.Body.Close()
		}
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4", n)
		}
		// The records: the first call's 503 and its declined retry, the
		// second call's 503 and its retry.
		if as := obs.all(); len(as) != 4 || as[2].LocalWait != 0 {
			t.Errorf("records %+v; want 4, the second call's first attempt sent at once (LocalWait 0): the declined retry kept its turn", as)
		}
	})
}

// TestAltProtocolSkipHedgedCopyCostsNoTurn: a hedged copy that the base
// declines gives back the token of the host's pace (WithRateLimit) it
// took, as a copy refused below the rate limiter does: the host's next
// call goes at once, not a turn later.
func TestAltProtocolSkipHedgedCopyCostsNoTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the first call's attempt, slow: a copy is launched
				time.Sleep(50 * time.Millisecond)
			case 2: // its copy, declined
				return nil, http.ErrSkipAltProtocol
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		var obs collector[Attempt]
		tr := New(alt, WithRateLimit(1, 2), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithObserver(obs.add))
		for i := range 2 {
			req := newRequest(t, context.Background(), "GET", "http://a.test/", nil)
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			resp.Body.Close()
		}
		if n := asked.Load(); n != 3 {
			t.Errorf("the base was asked %d times, want 3", n)
		}
		if as := obs.all(); len(as) != 2 || as[1].LocalWait != 0 {
			t.Errorf("records %+v; want 2, the second call sent at once (LocalWait 0): the declined copy kept its token", as)
		}
	})
}

// TestAltProtocolSkipLoggedAsDeclined: a call whose base declines it with
// http.ErrSkipAltProtocol returns the bare sentinel, and the http.Transport
// above sends the request itself: the call did not fail, and its record
// says the base declined it, at Debug, not "call failed" at Error. A call
// that ends with the sentinel wrapped after a request was sent (a reset
// before the declined retry) failed: Error.
func TestAltProtocolSkipLoggedAsDeclined(t *testing.T) {
	var logs bytes.Buffer
	var asked atomic.Int32
	alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if asked.Add(1) == 2 {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
		return nil, http.ErrSkipAltProtocol
	})
	tr := New(alt, WithBackoff(0, 0), WithMaxRetries(1),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	req, _ := http.NewRequest("GET", "http://a.test/", nil)
	if _, err := tr.RoundTrip(req); err != http.ErrSkipAltProtocol {
		t.Fatalf("first call = %v, want the bare sentinel", err)
	}
	first := logs.String()
	if strings.Contains(first, "level=ERROR") || !strings.Contains(first, "level=DEBUG") || !strings.Contains(first, "declined") {
		t.Errorf("record of a call the base declined:\n%s\nwant it at DEBUG, saying the base declined it", first)
	}
	logs.Reset()
	req, _ = http.NewRequest("GET", "http://a.test/", nil)
	if _, err := tr.RoundTrip(req); err == nil || err == http.ErrSkipAltProtocol {
		t.Fatalf("second call = %v, want the reset and the sentinel, wrapped", err)
	}
	if second := logs.String(); !strings.Contains(second, "level=ERROR") {
		t.Errorf("records of a call that failed with a reset, then a declined retry:\n%s\nwant an ERROR", second)
	}
}

// countClosed is a request body that counts its Closes.
type countClosed struct {
	io.Reader
	closed *atomic.Int32
}

func (b countClosed) Close() error {
	b.closed.Add(1)
	return nil
}

// TestAltProtocolSkipClosesBody: the body of a retry or of a hedged copy
// that the base declines with http.ErrSkipAltProtocol, which leaves it
// unread and open (as http2's does, for the http.Transport above to send
// it), is closed: no one sends it, and the call does not return the
// sentinel for net/http to. It was left open, a body of the caller's
// GetBody (a file) never closed, and the caller's own body, captured for
// its replay (no GetBody), with it.
func TestAltProtocolSkipClosesBody(t *testing.T) {
	for _, c := range []struct {
		name    string
		getBody bool
		hedged  bool
	}{
		{"retry/GetBody", true, false},
		{"retry/captured", false, false},
		{"hedged copy/GetBody", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var made, closed, asked atomic.Int32
				alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if asked.Add(1) > 1 {
						return nil, http.ErrSkipAltProtocol // the retry, or the copy
					}
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
					status := http.StatusServiceUnavailable
					if c.hedged {
						time.Sleep(50 * time.Millisecond) // a copy is launched
						status = http.StatusOK
					}
					return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
				})
				opts := []Option{WithBackoff(0, 0), WithMaxRetries(1)}
				if c.hedged {
					opts = append(opts, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithKeyHonoringHosts("a.test"))
				}
				tr := New(alt, opts...)
				newBody := func() (io.ReadCloser, error) {
					made.Add(1)
					return countClosed{strings.NewReader("x"), &closed}, nil
				}
				body, _ := newBody()
				method := "PUT"
				if c.hedged {
					method = "POST" // keyed, to a host that deduplicates: hedged
				}
				req := newRequest(t, context.Background(), method, "http://a.test/", body)
				req.ContentLength = 1
				if c.getBody {
					req.GetBody = newBody
				}
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				if n := asked.Load(); n != 2 {
					t.Fatalf("the base was asked %d times, want 2", n)
				}
				if m, n := made.Load(), closed.Load(); n != m {
					t.Errorf("%d request bodies made, %d closed; want every one closed", m, n)
				}
			})
		})
	}
}
