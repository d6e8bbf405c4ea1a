package resilient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestBreakerResolverDownCountsAgainstNoHost: when the resolver this
// machine asks (a local stub, systemd-resolved, a cluster's node-local
// DNS cache) is down, restarting, its port closed, every lookup fails
// with net's DNSError "…: connection refused", whatever the host. That
// failure was counted against each host called, as if the host had
// failed: a resolver down for a moment opened the breakers of healthy
// hosts, which then refused their callers for OpenTimeout once it was
// back, where a plain client's next call succeeds. The resolver is the
// client's, never the host's: a query it refused counts against no host,
// as a lookup short of a local socket does
// (TestBreakerLocalResourceLookupCountsAgainstNothing).
func TestBreakerResolverDownCountsAgainstNoHost(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	// A resolver whose address refuses every query: a UDP port nothing
	// listens on, which loopback answers with "connection refused".
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := pc.LocalAddr().String()
	pc.Close()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "udp", dnsAddr)
	}}
	var down atomic.Bool
	down.Store(true)
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return (&net.Dialer{Resolver: resolver}).DialContext(ctx, network, addr)
		}
		return new(net.Dialer).DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	defer base.CloseIdleConnections()
	tr := New(base, WithMaxRetries(0), WithoutRateLimit(), WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
	const target = "http://api.test/v1/items"
	for i := range 2 * defaultBreakerMinRequests {
		_, _, err := bkCall(t, tr, target)
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || dnsErr.IsNotFound {
			t.Fatalf("call %d while the resolver is down: %v, want a lookup its resolver refused", i+1, err)
		}
	}
	if st := tr.BreakerState(target); st != BreakerClosed {
		t.Errorf("after %d lookups the resolver refused: the host's breaker %v, want %v", 2*defaultBreakerMinRequests, st, BreakerClosed)
	}
	down.Store(false)
	if code, _, err := bkCall(t, tr, target); code != http.StatusOK || hits.Load() != 1 {
		t.Errorf("once the resolver is back: %d, %v, %d requests reached the host; want 200 from 1", code, err, hits.Load())
	}
}
