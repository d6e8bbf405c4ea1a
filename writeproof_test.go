package resilient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// This file checks that no error a server can cause after it processed a
// write passes for proof that the write never left: each test has a server
// that ignores keys process a POST, then fail the exchange, and counts the
// writes it processed through the Transport against a plain client's over
// the same base.

// retryNetworkErrors is a Classifier a user writes to retry every network
// error: the write rule holds whatever the class.
func retryNetworkErrors(_ *http.Response, _ *APIError, err error, def Class) Class {
	if err != nil {
		return Transient
	}
	return def
}

// processedTwice fails t when the Transport had the server process the
// write more often than a plain client did.
func processedTwice(t *testing.T, plain, resilient int32, plainErr, err error) {
	t.Helper()
	t.Logf("plain: %d processed, err %v; resilient: %d processed, err %v", plain, plainErr, resilient, err)
	if resilient > plain {
		t.Errorf("write processed %d times by a server that ignores keys, a plain client's %d", resilient, plain)
	}
}

// postTo sends a POST to url through rt and returns its error.
func postTo(rt http.RoundTripper, url string) error {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"text":"hi"}`))
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// TestWriteProofTLSRecordAfterWrite: a TLS server processes the POST, then
// sends a record crypto/tls rejects (a tls.RecordHeaderError, as a server
// that does not speak TLS makes in a handshake): a Classifier that retries
// network errors has it sent once.
func TestWriteProofTLSRecordAfterWrite(t *testing.T) {
	var processed atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		processed.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		conn.(*tls.Conn).NetConn().Write([]byte{0x17, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'})
	}))
	defer srv.Close()
	base := srv.Client().Transport.(*http.Transport)
	plainErr := postTo(base, srv.URL+"/v1/posts")
	plain := processed.Swap(0)
	err := postTo(New(base, WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), srv.URL+"/v1/posts")
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// h2cServer serves HTTP/2 without TLS (prior knowledge) by hand: for each
// request it reads whole, it counts it processed and writes answer(id),
// the frames of its answer. It returns the server's URL. Its connections
// are closed when the test ends, whatever the client keeps.
func h2cServer(t *testing.T, processed *atomic.Int32, answer func(id uint32) []byte) string {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	addr, _ := tcpServer(t, func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := io.ReadFull(br, make([]byte, len(http2Preface))); err != nil {
				return
			}
			c.Write(h2Frame(4, 0, 0, nil)) // SETTINGS
			hdr := make([]byte, 9)
			for {
				if _, err := io.ReadFull(br, hdr); err != nil {
					return
				}
				n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
				typ, flags := hdr[3], hdr[4]
				id := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
				if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
					return
				}
				switch {
				case typ == 4 && flags&1 == 0: // the client's SETTINGS
					c.Write(h2Frame(4, 1, 0, nil))
				case (typ == 0 || typ == 1) && flags&1 != 0: // the request ends
					processed.Add(1)
					c.Write(answer(id))
				}
			}
		}()
	})
	return "http://" + addr
}

// h2Frame returns an HTTP/2 frame.
func h2Frame(typ, flags byte, id uint32, payload []byte) []byte {
	b := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:], id)
	return append(b, payload...)
}

// h2cTransport returns an http.Transport that speaks HTTP/2 without TLS.
func h2cTransport(t *testing.T) *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	base := &http.Transport{Protocols: &p}
	t.Cleanup(base.CloseIdleConnections)
	return base
}

// TestWriteProofH2InvalidResponseHeader: an HTTP/2 server processes the
// POST and answers with a header value net/http rejects; its error says
// "invalid header field", as its refusal to send a caller's invalid
// header does, which proves nothing here: a Classifier that retries
// network errors has the write sent once.
func TestWriteProofH2InvalidResponseHeader(t *testing.T) {
	var processed atomic.Int32
	url := h2cServer(t, &processed, func(id uint32) []byte {
		// :status 200 (static index 8), then x-bad: "a\x01b".
		return h2Frame(1, 0x4|0x1, id, []byte{0x88, 0x00, 5, 'x', '-', 'b', 'a', 'd', 3, 'a', 0x01, 'b'})
	})
	plainErr := postTo(h2cTransport(t), url+"/v1/posts")
	plain := processed.Swap(0)
	err := postTo(New(h2cTransport(t), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), url+"/v1/posts")
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofH2ResendDialRefused: an HTTP/2 server processes the POST
// and resets its stream with PROTOCOL_ERROR; net/http resends the request
// by itself on a new connection (golang/go#47635), whose dial is refused
// (the server restarting). The error is that dial's, of net/http's resend,
// not of the request, which was written: with the defaults, the write is
// not resent.
func TestWriteProofH2ResendDialRefused(t *testing.T) {
	var processed atomic.Int32
	url := h2cServer(t, &processed, func(id uint32) []byte {
		if processed.Load() == 1 {
			return h2Frame(3, 0, id, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
		}
		return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
	})
	addr, refused := strings.TrimPrefix(url, "http://"), refusedAddr(t)
	base := func() *http.Transport {
		tr := h2cTransport(t)
		var dials atomic.Int32
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			to := addr
			if dials.Add(1) == 2 {
				to = refused
			}
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		}
		return tr
	}
	plainErr := postTo(base(), url+"/v1/posts")
	plain := processed.Swap(0)
	err := postTo(New(base(), WithBackoff(0, 0)), url+"/v1/posts")
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofH2ResetAfterWrite: the control: the connection reset after
// the write (RST_STREAM INTERNAL_ERROR) proves nothing, and a Classifier
// that retries network errors has the write sent once.
func TestWriteProofH2ResetAfterWrite(t *testing.T) {
	var processed atomic.Int32
	url := h2cServer(t, &processed, func(id uint32) []byte {
		return h2Frame(3, 0, id, []byte{0, 0, 0, 2}) // RST_STREAM INTERNAL_ERROR
	})
	err := postTo(New(h2cTransport(t), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), url+"/v1/posts")
	processedTwice(t, 1, processed.Load(), nil, err)
}

// TestWriteProofRedirectToAnotherHost: the caller's Idempotency-Key, set
// for host A, which answers 307 to host B; http.Client copies the caller's
// headers, the key among them, into the request for B, which ignores keys:
// the key says nothing of B, and B's 500 after processing is not resent.
func TestWriteProofRedirectToAnotherHost(t *testing.T) {
	var processed atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		processed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer b.Close()
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, b.URL+"/v1/posts", http.StatusTemporaryRedirect)
	}))
	defer a.Close()
	send := func(c *http.Client) error {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
		req.Header.Set("Idempotency-Key", "post-1") // for A
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	plainErr := send(&http.Client{Transport: base})
	plain := processed.Swap(0)
	err := send(&http.Client{Transport: New(base, WithBackoff(0, 0))})
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofRefusedStreamNoGetBody: a POST whose body has no GetBody
// (net/http cannot resend it itself) refused with REFUSED_STREAM by an
// HTTP/2 server that ignores keys was not processed (RFC 9113, 8.7): it is
// resent once, and created once.
func TestWriteProofRefusedStreamNoGetBody(t *testing.T) {
	var seen, created atomic.Int32
	url := h2cServer(t, &seen, func(id uint32) []byte {
		if seen.Load() == 1 {
			return h2Frame(3, 0, id, []byte{0, 0, 0, 7}) // RST_STREAM REFUSED_STREAM
		}
		created.Add(1)
		return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
	})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", io.NopCloser(strings.NewReader(`{"text":"hi"}`)))
	resp, err := New(h2cTransport(t), WithBackoff(0, 0)).RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || created.Load() != 1 {
		t.Errorf("a write the server refused unprocessed was not resent: err %v, created %d", err, created.Load())
	}
}
