package resilient

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
)

// This file holds the retry budget of a retry that the server processed
// before the caller's own Dialer.Control refused the connection of
// net/http's own resend of it.

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
