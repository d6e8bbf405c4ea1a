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
			if n, hedges := hedgedSends(t, "GET", tc.header, http.StatusSwitchingProtocols); n != tc.want || hedges != int(tc.want-1) {
				t.Errorf("%d handshakes sent, Report.Hedges %d; want %d", n, hedges, tc.want)
			}
		})
	}
}

// hedgedSends makes one call of method with header through a Transport
// hedging after 10ms, to a host answering status after 100ms, and returns
// the requests the host got and the call's Report.Hedges.
func hedgedSends(t *testing.T, method string, header http.Header, status int) (hits int32, hedges int) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n.Add(1)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: &rwBody{}, Request: req}, nil
		})
		var r Report
		tr := New(rt, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		req := newRequest(t, WithReport(context.Background(), &r), method, "http://api.test/ws", nil)
		req.Header = header
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		hits, hedges = n.Load(), r.Hedges
	})
	return hits, hedges
}
