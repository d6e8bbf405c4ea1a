package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfATunnel: a request whose answer is a connection of
// its own, as an Upgrade's 101 is (TestHedgingNoCopyOfAnUpgrade), gets no
// hedged copy either: a CONNECT, a proxy's tunnel, or an HTTP/2 extended
// CONNECT (its :protocol, a WebSocket over HTTP/2, RFC 8441), keyed by the
// caller, which makes a write hedgeable; and an Upgrade whose first value
// is blank but a later one names the protocol (net/http writes every
// value on a line of its own, and a WebSocket server reads them all). A
// copy would open a second tunnel or session, where a plain client opens
// one. The same CONNECT's write, a POST, is hedged as before.
func TestHedgingNoCopyOfATunnel(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		header       http.Header
		want         int32
	}{
		{"CONNECT", "CONNECT", http.Header{"Idempotency-Key": {"k1"}}, 1},
		{"extended CONNECT", "CONNECT", http.Header{"Idempotency-Key": {"k1"}, ":protocol": {"websocket"}}, 1},
		{"Upgrade, blank first", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"", "websocket"}}, 1},
		{"keyed POST", "POST", http.Header{"Idempotency-Key": {"k1"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					select {
					case <-time.After(100 * time.Millisecond):
					case <-req.Context().Done():
						return nil, context.Cause(req.Context())
					}
					return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: &rwBody{}, Request: req}, nil
				})
				var r Report
				tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				req := newRequest(t, WithReport(context.Background(), &r), tc.method, "http://api.test/ws", nil)
				req.Header = tc.header
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				if n := hits.Load(); n != tc.want || r.Hedges != int(tc.want-1) {
					t.Errorf("%d requests sent, Report.Hedges %d; want %d", n, r.Hedges, tc.want)
				}
			})
		})
	}
}
