package resilient

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// goAwayBelow returns the answers of an HTTP/2 server (see h2Server) to a
// warm-up GET (200), then a POST, to which it answers a GOAWAY whose last
// stream ID is the one below the POST's, with code (NO_ERROR: a graceful
// shutdown, as a server draining for a restart sends), which says that
// the server did not process it (RFC 9113, 6.8 and 8.7); then to any
// other request, which it processes, counting it in created (201). seen
// counts every request the server read whole.
func goAwayBelow(seen, created *atomic.Int32, code uint32) func(uint32) []byte {
	return func(id uint32) []byte {
		switch seen.Load() {
		case 1: // the warm-up GET
			return h2Frame(1, 0x4|0x1, id, []byte{0x88}) // :status 200
		case 2: // the POST
			p := binary.BigEndian.AppendUint32(nil, id-2)
			return h2Frame(7, 0, 0, binary.BigEndian.AppendUint32(p, code)) // GOAWAY
		}
		created.Add(1)
		return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
	}
}

// h2Servers runs the test of an HTTP/2 server that answers with answer
// (see h2Server), counting in seen what it reads, over HTTP/2 without TLS
// ("h2c") and over TLS (ALPN "h2"), given its URL and a new base each time.
func h2Servers(t *testing.T, answer func(seen *atomic.Int32) func(uint32) []byte, test func(t *testing.T, url string, base func() *http.Transport)) {
	t.Run("h2c", func(t *testing.T) {
		var seen atomic.Int32
		test(t, h2cServer(t, &seen, answer(&seen)), func() *http.Transport { return h2cTransport(t) })
	})
	t.Run("h2", func(t *testing.T) {
		ts := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
		cert, roots := ts.TLS.Certificates[0], ts.Client().Transport.(*http.Transport).TLSClientConfig
		ts.Close()
		var seen atomic.Int32
		addr := h2Server(t, &seen, answer(&seen), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		test(t, "https://"+addr, func() *http.Transport {
			tr := &http.Transport{TLSClientConfig: roots.Clone(), ForceAttemptHTTP2: true}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		})
	})
}

// TestWriteProofH2GoAwayBelowStream: an HTTP/2 server that ignores keys
// answers a POST whose body has no GetBody (net/http cannot resend it
// itself) with a GOAWAY whose last stream ID is below the POST's stream:
// the server says that it did not process it (RFC 9113, 8.7), and net/http
// fails it with "cannot retry err [http2: Transport received Server's
// graceful shutdown GOAWAY] after Request.Body was written". The write is
// resent once, on a new connection, and created once, over HTTP/2 without
// TLS and over TLS (ALPN h2).
func TestWriteProofH2GoAwayBelowStream(t *testing.T) {
	var created atomic.Int32
	h2Servers(t, func(seen *atomic.Int32) func(uint32) []byte {
		created.Store(0)
		return goAwayBelow(seen, &created, 0)
	}, func(t *testing.T, url string, base func() *http.Transport) {
		rt := New(base(), WithBackoff(0, 0))
		req, _ := http.NewRequest(http.MethodGet, url+"/warm", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		req, _ = http.NewRequest(http.MethodPost, url+"/v1/posts", io.NopCloser(strings.NewReader(`{"text":"hi"}`)))
		if resp, err = rt.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
		if err != nil || created.Load() != 1 {
			t.Errorf("a write the server said it did not process was not resent: err %v, created %d", err, created.Load())
		}
	})
}

// TestWriteProofH2GoAwayFirstStream: an HTTP/2 server that ignores keys
// answers the first stream of a new connection, a POST, with a GOAWAY
// whose last stream ID is 0 and whose code is an error (a server shedding
// load: ENHANCE_YOUR_CALM), which says that it processed no stream; net/http
// fails the POST with "http2: Transport received GOAWAY from server
// ErrCode:ENHANCE_YOUR_CALM", and resends nothing itself. The POST, sent
// on that one stream alone, is resent on a new connection, and created
// once, whether its body has GetBody or not, over HTTP/2 without TLS and
// over TLS (ALPN h2).
func TestWriteProofH2GoAwayFirstStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"body without GetBody", func() io.Reader { return io.NopCloser(strings.NewReader(`{"text":"hi"}`)) }},
		{"body with GetBody", func() io.Reader { return strings.NewReader(`{"text":"hi"}`) }},
		{"no body", func() io.Reader { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var created atomic.Int32
			h2Servers(t, func(seen *atomic.Int32) func(uint32) []byte {
				created.Store(0)
				return func(id uint32) []byte {
					if seen.Load() == 1 {
						return h2Frame(7, 0, 0, []byte{0, 0, 0, 0, 0, 0, 0, 0xb}) // GOAWAY 0 ENHANCE_YOUR_CALM
					}
					created.Add(1)
					return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
				}
			}, func(t *testing.T, url string, base func() *http.Transport) {
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", tc.body())
				resp, err := New(base(), WithBackoff(0, 0)).RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || created.Load() != 1 {
					t.Errorf("a write the server said it did not process was not resent: err %v, created %d", err, created.Load())
				}
			})
		})
	}
}

// TestWriteProofH2GoAwayFirstStreamAfterResend: the control: the server
// processes the POST and resets its stream with PROTOCOL_ERROR, with a
// GOAWAY that covers it; net/http resends the POST itself (golang/go#47635)
// on a new connection, whose first stream the server refuses with a
// GOAWAY of last stream ID 0 and an error code. The error is that of
// net/http's resend, which says nothing of the stream processed: the write
// is not resent.
func TestWriteProofH2GoAwayFirstStreamAfterResend(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"body with GetBody", func() io.Reader { return strings.NewReader(`{"text":"hi"}`) }},
		{"no body", func() io.Reader { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h2Servers(t, func(processed *atomic.Int32) func(uint32) []byte {
				return func(id uint32) []byte {
					if processed.Load() == 1 {
						return append(h2Frame(7, 0, 0, []byte{0, 0, 0, byte(id), 0, 0, 0, 0}), // GOAWAY id NO_ERROR
							h2Frame(3, 0, id, []byte{0, 0, 0, 1})...) // RST_STREAM PROTOCOL_ERROR
					}
					return h2Frame(7, 0, 0, []byte{0, 0, 0, 0, 0, 0, 0, 0xb}) // GOAWAY 0 ENHANCE_YOUR_CALM
				}
			}, func(t *testing.T, url string, base func() *http.Transport) {
				var attempts int
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", tc.body())
				resp, err := New(base(), WithBackoff(0, 0), WithObserver(func(Attempt) { attempts++ })).RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				if err == nil || attempts != 1 {
					t.Errorf("a write the server may have processed was resent: err %v, %d attempts", err, attempts)
				}
			})
		})
	}
}
