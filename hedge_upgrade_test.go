package resilient

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfAnUpgrade: a request to switch protocols (a
// WebSocket's handshake, its Upgrade header spelled in any case) gets no
// hedged copy, however slow its 101: a copy would open a second
// connection, a session the server sets up for a caller that closes it at
// once, where a plain client opens one. Its GET without the header is
// hedged as before.
func TestHedgingNoCopyOfAnUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int32
	}{
		{"Upgrade", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, 1},
		{"upgrade by hand", http.Header{"connection": {"upgrade"}, "upgrade": {"websocket"}}, 1},
		{"no Upgrade", http.Header{}, 2},
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
					return &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{}, Body: &rwBody{}, Request: req}, nil
				})
				var r Report
				tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				req := newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/ws", nil)
				req.Header = tc.header
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				if n := hits.Load(); n != tc.want || r.Hedges != int(tc.want-1) {
					t.Errorf("%d handshakes sent, Report.Hedges %d; want %d", n, r.Hedges, tc.want)
				}
			})
		})
	}
}
