package idna

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
)

// UTS #46 maps the ideographic full stop (U+3002), the full-width one
// (U+FF0E) and the half-width ideographic one (U+FF61) to '.', before it
// splits a name into labels: net/http dials "bücher。example" as
// "xn--bcher-kva.example", and ToASCII converts it so, not into a host of
// its own. A stop that ends or starts a name leaves an empty label, which
// ToASCII refuses as it refuses "ü..test".
func TestToASCIIFullStops(t *testing.T) {
	var (
		mu     sync.Mutex
		dialed string
	)
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = addr
		mu.Unlock()
		return nil, errors.New("dialed")
	}}
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"bücher\u3002example", "xn--bcher-kva.example", true},
		{"BÜCHER\uFF0EEXAMPLE", "xn--bcher-kva.example", true},
		{"bücher\uFF61example", "xn--bcher-kva.example", true},
		{"日本語\u3002jp", "xn--wgv71a119e.jp", true},
		{"api\u3002test", "api.test", true},
		{"a\u3002b.c\uFF0Ed\uFF61e", "a.b.c.d.e", true},
		{"bücher.example\u3002", "", false},
		{"\u3002bücher.example", "", false},
		{"bücher\u3002\u3002example", "", false},
		{"bücher\u3002.example", "", false},
		{"xn--bcher-kva\u3002ü.test", "", false},
		{"ümlaut-\u3002test", "", false},
		{"bücher\u3001example", "", false}, // the ideographic comma: no stop
	} {
		if got, ok := ToASCII(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ToASCII(%q) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if tc.ok {
			if host, ok := dialedHost(tr, &dialed, &mu, tc.in); !ok || host != tc.want {
				t.Errorf("net/http dials %q (%v) for %q, want %q", host, ok, tc.in, tc.want)
			}
		}
	}
}
