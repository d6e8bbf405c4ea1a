package resilient

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestCallersMistakeRetriedByClassifierCountsAgainstNothing: a Classifier
// that retries every network error (as the breaker's tests show users
// write) retries a request net/http refuses to send (an invalid header
// value), as it was told; but those attempts never left the process: the
// host's breaker does not count them, and a careless caller does not lock
// every caller out of a healthy host.
func TestCallersMistakeRetriedByClassifierCountsAgainstNothing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	base := srv.Client().Transport
	defer base.(*http.Transport).CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0), WithMaxRetries(2),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
		WithClassifier(func(_ *http.Response, _ *APIError, err error, def Class) Class {
			if err != nil {
				return Transient
			}
			return def
		}))
	bad, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
	bad.Header.Set("X-Note", "line\nbreak")
	if resp, err := tr.RoundTrip(bad); err == nil {
		resp.Body.Close()
		t.Fatal("a request with an invalid header value was sent")
	}
	if st := tr.BreakerState(srv.URL); st != BreakerClosed {
		t.Errorf("after a request that could never be sent: breaker %v, want %v", st, BreakerClosed)
	}
	good, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
	resp, err := tr.RoundTrip(good)
	if err != nil {
		t.Fatalf("another caller's valid request to the healthy host: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Errorf("the server saw %d requests, want 1", hits.Load())
	}
}
