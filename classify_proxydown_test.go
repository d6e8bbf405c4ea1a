package resilient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// TestBreakerProxyOutageCountsAgainstNoHost: a forward proxy that refuses
// connections (restarting, its port closed) fails every request sent
// through it with net/http's "proxyconnect" error, whatever its host. That
// failure was counted against each host called, as if the host had
// failed: a proxy down for a moment opened the breakers of healthy hosts,
// which then refused their callers for OpenTimeout after the proxy came
// back, where a plain client's next call succeeds. A connection to the
// proxy that failed is the proxy's, as a dial short of a local resource is
// this machine's (TestBreakerLocalResourceErrorsCountAgainstNothing): it
// counts against no host.
func TestBreakerProxyOutageCountsAgainstNoHost(t *testing.T) {
	var hits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1) // a forward proxy that answers for the host
		w.Write([]byte("ok"))
	}))
	defer proxy.Close()
	var down atomic.Bool
	down.Store(true)
	base := &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.test:3128"}),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "proxy.test:3128" {
				t.Errorf("dial of %s, want the proxy's", addr)
			}
			if down.Load() {
				return nil, refusedDial(network, proxy.Listener.Addr().String())
			}
			return new(net.Dialer).DialContext(ctx, network, proxy.Listener.Addr().String())
		},
	}
	defer base.CloseIdleConnections()
	tr := New(base, WithMaxRetries(0), WithoutRateLimit(), WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
	const target = "http://api.test/v1/items"
	for i := range 2 * defaultBreakerMinRequests {
		_, _, err := bkCall(t, tr, target)
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "proxyconnect" {
			t.Fatalf("call %d while the proxy is down: %v, want net/http's proxyconnect error", i+1, err)
		}
	}
	if st := tr.BreakerState(target); st != BreakerClosed {
		t.Errorf("after %d calls the proxy refused: the host's breaker %v, want %v", 2*defaultBreakerMinRequests, st, BreakerClosed)
	}
	down.Store(false)
	if code, _, err := bkCall(t, tr, target); code != http.StatusOK || hits.Load() != 1 {
		t.Errorf("once the proxy is back: %d, %v, %d requests reached it; want 200 from 1", code, err, hits.Load())
	}
}
