package resilient

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds the retry budget of a retry whose connection the
// caller's own Dialer.Control refused: after the server processed it, on
// net/http's own resend of it; or before anything was written, on net/http's
// redial after a reused connection the server had reset.

// TestRetryBudgetCallbackRefusalAfterAConnectionSpends: a keyed write to a
// host that deduplicates by key gets a 503, and its retry, sent on the
// same (reused) HTTP/1 connection, is processed, and the connection
// dropped unanswered. net/http resends the keyed request on its own, and
// the caller's Dialer.Control refuses that new connection (an SSRF guard
// that now meets a private address for the host). The retry reached the
// server: it spends what it cost from the host's retry budget, as any
// retry the server processed does, however its attempt ended.
func TestRetryBudgetCallbackRefusalAfterAConnectionSpends(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost {
			return
		}
		if posts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack() // processed, then the process restarts
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer srv.Close()
	var dials atomic.Int32
	d := &net.Dialer{Control: func(string, string, syscall.RawConn) error {
		if dials.Add(1) > 1 {
			return errDialBlocked
		}
		return nil
	}}
	base := &http.Transport{DialContext: d.DialContext}
	defer base.CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0), WithoutBreaker(), WithKeyHonoringHosts("127.0.0.1"),
		WithRetryBudget(RetryBudget{Burst: 3, Ratio: 1e-6}))
	resp, err := warmThenPostKeyed(t, tr, srv.URL, "")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("status %d; want the refused connection's error", resp.StatusCode)
	}
	if posts.Load() != 2 || dials.Load() != 2 {
		t.Fatalf("the server saw %d POSTs, %d dials; want 2 and 2 (the retry processed, net/http's resend refused)", posts.Load(), dials.Load())
	}
	st, _ := tr.HostState(newRequest(t, t.Context(), http.MethodGet, srv.URL, nil))
	if st.RetryBudget > 2.5 {
		t.Errorf("err %v: the host's retry budget holds %v after a retry the server processed; want about 2 (the retry spent)", err, st.RetryBudget)
	}
}

// redialWaitConn is an idleDeadConn whose writes after the first wait for
// the server's reset to be read, so that net/http writes the retry on the
// connection it reuses, dead, and writes nothing of it.
type redialWaitConn struct {
	*idleDeadConn
	writes atomic.Int32
}

func (c *redialWaitConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) > 1 {
		select {
		case <-c.dead:
		case <-time.After(5 * time.Second):
		}
	}
	return c.idleDeadConn.Write(p)
}

// TestRetryBudgetCallbackRefusalOnRedialRefunds: a write with no key gets
// a 429, and the server (restarting) resets the keep-alive connection it
// answered on. net/http picks that connection for the retry, writes
// nothing on it, and dials anew on its own; the caller's Dialer.Control
// (an SSRF guard) refuses that dial. The retry never reached the server:
// it costs the host's retry budget nothing, as a retry refused at its
// first dial does. (The call returns the 429, or the redial's error.)
func TestRetryBudgetCallbackRefusalOnRedialRefunds(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	idle := firstIdle(srv)
	srv.Start()
	defer srv.Close()
	go func() {
		sc := <-idle
		sc.(*net.TCPConn).SetLinger(0)
		sc.Close() // reset
	}()
	var dials atomic.Int32
	d := &net.Dialer{Control: func(string, string, syscall.RawConn) error {
		if dials.Add(1) > 1 {
			return errDialBlocked
		}
		return nil
	}}
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &redialWaitConn{idleDeadConn: &idleDeadConn{Conn: c, dead: make(chan struct{}), closed: make(chan struct{})}}, nil
	}}
	defer base.CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0), WithoutBreaker(), WithoutRateLimit(), WithoutIdempotencyKeys(),
		WithMaxRetries(1), WithRetryBudget(RetryBudget{Burst: 3, Ratio: 1e-6}))
	err := postTo(tr, srv.URL+"/v1/posts") // the 429, or the refused redial's error
	if posts.Load() != 1 || dials.Load() != 2 {
		t.Fatalf("err %v: the server saw %d POSTs, %d dials; want 1 and 2 (the retry written nowhere, its redial refused)", err, posts.Load(), dials.Load())
	}
	st, _ := tr.HostState(newRequest(t, t.Context(), http.MethodGet, srv.URL, nil))
	if st.RetryBudget < 2.5 {
		t.Errorf("err %v: the host's retry budget holds %v after a retry that never reached the server; want 3 (given back)", err, st.RetryBudget)
	}
}
