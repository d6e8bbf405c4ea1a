package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"testing"
)

// TestServerFramingNotRetriedOverHTTP2: an HTTP/2 server whose response
// header block net/http refuses for this stream alone (a control byte in a
// value, an upper-case or empty field name, a pseudo-header after a regular
// one, unknown, twice, or a request's beside :status, no :status or one
// that is not a number) sends the same to a retry, as its HTTP/1 twin does
// (TestServerFramingNotRetried): net/http fails the stream with "stream
// error: stream ID 1; PROTOCOL_ERROR; invalid header field value for …",
// and the GET is sent once, as by a plain client, over HTTP/2 without TLS
// and over TLS (ALPN h2). With a Got1xxResponse hook that returns nil in
// the request's trace (one otelhttptrace installs on every call), the
// error is the server's still, not the caller's *RequestError, as over
// HTTP/1 (TestGot1xxHookNotBlamedForBadFraming).
func TestServerFramingNotRetriedOverHTTP2(t *testing.T) {
	nilHook := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil },
	})
	for _, tc := range []struct {
		name  string
		block []byte // the HEADERS frame's block (HPACK, no dynamic table)
	}{
		{"control byte in a value", []byte{0x88, 0x00, 5, 'x', '-', 'b', 'a', 'd', 3, 'a', 0x01, 'b'}},
		{"upper-case name", []byte{0x88, 0x00, 3, 'X', '-', 'A', 1, 'b'}},
		{"empty name", []byte{0x88, 0x00, 0, 1, 'b'}},
		{"unknown pseudo-header", []byte{0x88, 0x00, 4, ':', 'f', 'o', 'o', 1, 'b'}},
		{"duplicate pseudo-header", []byte{0x88, 0x88}},
		{"request pseudo-header", []byte{0x88, 0x82}}, // :method GET
		{"1xx ending the stream", []byte{0x08, 3, '1', '0', '3'}},
		{"pseudo-header after a regular one", []byte{0x00, 3, 'x', '-', 'a', 1, 'b', 0x88}},
		{"no :status", []byte{0x00, 3, 'x', '-', 'a', 1, 'b'}},
		{"non-numeric :status", []byte{0x08, 3, 'a', 'b', 'c'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen *atomic.Int32
			h2Servers(t, func(s *atomic.Int32) func(uint32) []byte {
				seen = s
				return func(id uint32) []byte { return h2Frame(1, 0x4|0x1, id, tc.block) } // HEADERS END_HEADERS END_STREAM
			}, func(t *testing.T, url string, base func() *http.Transport) {
				for _, ctx := range []context.Context{context.Background(), nilHook} {
					hooked := ctx != context.Background()
					seen.Store(0)
					resp, err := New(base(), WithBackoff(0, 0)).RoundTrip(newRequest(t, ctx, http.MethodGet, url+"/v1/items", nil))
					if err == nil {
						resp.Body.Close()
					}
					var re *RequestError
					if n := seen.Load(); err == nil || n != 1 || errors.As(err, &re) {
						t.Errorf("hook %v: the server got the GET %d times (error %v, a *RequestError: %v); want once, the server's fault: its framing is its own", hooked, n, err, re != nil)
					}
				}
			})
		})
	}
}
