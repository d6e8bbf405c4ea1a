package resilient

import (
	"net/http"
	"testing"
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
			if n, hedges := hedgedSends(t, tc.method, tc.header, http.StatusOK); n != tc.want || hedges != int(tc.want-1) {
				t.Errorf("%d requests sent, Report.Hedges %d; want %d", n, hedges, tc.want)
			}
		})
	}
}
