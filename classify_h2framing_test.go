package resilient

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// TestServerFramingNotRetriedOverHTTP2: an HTTP/2 server whose response
// header block net/http refuses for this stream alone (a control byte in a
// value, an upper-case or empty field name, a pseudo-header after a regular
// one, no :status or one that is not a number) sends the same to a retry,
// as its HTTP/1 twin does (TestServerFramingNotRetried): net/http fails the
// stream with "stream error: stream ID 1; PROTOCOL_ERROR; invalid header
// field value for …", and the GET is sent once, as by a plain client, over
// HTTP/2 without TLS and over TLS (ALPN h2).
func TestServerFramingNotRetriedOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block []byte // the HEADERS frame's block (HPACK, no dynamic table)
	}{
		{"control byte in a value", []byte{0x88, 0x00, 5, 'x', '-', 'b', 'a', 'd', 3, 'a', 0x01, 'b'}},
		{"upper-case name", []byte{0x88, 0x00, 3, 'X', '-', 'A', 1, 'b'}},
		{"empty name", []byte{0x88, 0x00, 0, 1, 'b'}},
		{"unknown pseudo-header", []byte{0x88, 0x00, 4, ':', 'f', 'o', 'o', 1, 'b'}},
		{"1xx ending the stream", []byte{0x08, 3, '1', '0', '3'}},
		{"pseudo-header after a regular one", []byte{0x00, 3, 'x', '-', 'a', 1, 'b', 0x88}},
		{"no :status", []byte{0x00, 3, 'x', '-', 'a', 1, 'b'}},
		{"non-numeric :status", []byte{0x08, 3, 'a', 'b', 'c'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h2Servers(t, func(*atomic.Int32) func(uint32) []byte {
				return func(id uint32) []byte { return h2Frame(1, 0x4|0x1, id, tc.block) } // HEADERS END_HEADERS END_STREAM
			}, func(t *testing.T, url string, base func() *http.Transport) {
				var attempts int
				err := getClosed(t, New(base(), WithBackoff(0, 0), WithObserver(func(Attempt) { attempts++ })), url+"/v1/items")
				if err == nil || attempts != 1 {
					t.Errorf("the server got the GET %d times (error %v); want once: its framing is its own", attempts, err)
				}
			})
		})
	}
}
