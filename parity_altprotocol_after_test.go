package resilient

import (
	"context"
	"errors"
	"io"
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
