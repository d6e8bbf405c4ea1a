package resilient

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// TestProxyFromEnvironmentMisconfiguredNotRetried: an HTTPS_PROXY or
// HTTP_PROXY that does not parse ("http://proxy corp:8080", a space typed
// into it) makes net/http's ProxyFromEnvironment, the Proxy of
// http.DefaultTransport, fail every request of the process the same way
// ("invalid proxy address …"), before it dials anything: a plain client
// returns it at once. The Transport returns it after one attempt, and the
// host, which was never reached, is not counted against by its breaker.
func TestProxyFromEnvironmentMisconfiguredNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	const env = "http://proxy corp:8080"
	base := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		// golang.org/x/net/http/httpproxy's words, as
		// http.ProxyFromEnvironment returns them for env.
		_, err := url.Parse("http://" + env)
		return nil, fmt.Errorf("invalid proxy address %q: %v", env, err)
	}}
	defer base.CloseIdleConnections()
	var attempts []Attempt
	tr := New(base, WithBackoff(0, 0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
	if err := getClosed(t, tr, srv.URL+"/v1/posts"); err == nil {
		t.Fatal("a request through a proxy that does not parse succeeded")
	}
	if len(attempts) == 0 {
		t.Fatal("a misconfigured proxy: no attempt observed")
	}
	if len(attempts) != 1 || attempts[0].Class != Permanent {
		t.Errorf("a misconfigured proxy: %d attempts, the first %v; want 1 attempt, %v", len(attempts), attempts[0].Class, Permanent)
	}
	if st := tr.BreakerState(srv.URL); st != BreakerClosed {
		t.Errorf("after a proxy misconfiguration: breaker %v, want %v", st, BreakerClosed)
	}
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests, want 0", hits.Load())
	}
}
