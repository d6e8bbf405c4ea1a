package resilient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
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
	return "http://" + h2Server(t, processed, answer, nil)
}

// h2Server serves HTTP/2 by hand as h2cServer does, over TLS under cfg
// when it is not nil, and returns the server's address.
func h2Server(t *testing.T, processed *atomic.Int32, answer func(id uint32) []byte, cfg *tls.Config) string {
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
			if cfg != nil {
				c = tls.Server(c, cfg)
			}
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
	return addr
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
		tr.DialContext = secondDialRefused(addr, refused)
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

// keyedPostPlainThenOurs posts to url, under host (its Host header; "" for
// the URL's) with the caller's Idempotency-Key set for that first host,
// through an http.Client that follows redirects (with no bound when
// unbounded), over a plain transport and then over a Transport on it, and
// checks with processedTwice that processed, the writes the servers
// stored, counts no more for the Transport than for the plain client.
func keyedPostPlainThenOurs(t *testing.T, url, host string, unbounded bool, processed *atomic.Int32) {
	t.Helper()
	send := func(rt http.RoundTripper) error {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"text":"hi"}`))
		req.Host = host
		req.Header.Set("Idempotency-Key", "post-1") // for the first host
		c := &http.Client{Transport: rt}
		if unbounded {
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	plainErr := send(base)
	plain := processed.Swap(0)
	err := send(New(base, WithBackoff(0, 0)))
	processedTwice(t, plain, processed.Load(), plainErr, err)
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
	keyedPostPlainThenOurs(t, a.URL+"/v1/posts", "", false, &processed)
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

// dialRefusedAfter returns a DialContext that dials addr, but for its
// first dial once processed reaches n, which it makes to refused: the
// server restarting just after it processed the write, as net/http dials
// it anew on its own within an attempt. (Counting dials instead makes the
// count depend on whether net/http reused the warm-up's connection for the
// write: under load it may dial for it, and the plain client's write then
// met the refused dial unsent.)
func dialRefusedAfter(addr, refused string, processed *atomic.Int32, n int32) func(context.Context, string, string) (net.Conn, error) {
	var done atomic.Bool
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		if processed.Load() >= n && done.CompareAndSwap(false, true) {
			return nil, refusedDial(network, refused)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// secondDialRefused returns a DialContext that dials addr, but for its
// second dial, which it makes to refused: the server restarting, as
// net/http dials it anew on its own within an attempt.
func secondDialRefused(addr, refused string) func(context.Context, string, string) (net.Conn, error) {
	var dials atomic.Int32
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		if dials.Add(1) == 2 {
			return nil, refusedDial(network, refused)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// warmThenPost sends a GET to url+"/warm", whose connection stays open
// for the next request, then a POST to url+"/v1/posts", through rt, and
// returns the POST's error.
func warmThenPost(t *testing.T, rt http.RoundTripper, url string) error {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/warm", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return postTo(rt, url+"/v1/posts")
}

// warmThenReset returns the answers of an HTTP/2 server (see h2Server)
// to a warm-up GET (200), then a POST, which it processes and resets with
// PROTOCOL_ERROR, then any other request (201), processed counting them.
func warmThenReset(processed *atomic.Int32) func(uint32) []byte {
	return func(id uint32) []byte {
		switch processed.Load() {
		case 1: // the warm-up GET
			return h2Frame(1, 0x4|0x1, id, []byte{0x88}) // :status 200
		case 2: // the POST
			return h2Frame(3, 0, id, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
		}
		return h2Frame(1, 0x4|0x1, id, []byte{0x08, 3, '2', '0', '1'}) // :status 201
	}
}

// TestWriteProofH2ReusedResendDialRefused: as
// TestWriteProofH2ResendDialRefused, on a connection an earlier request
// used (net/http reports it reused, as HTTP/1 reports the idle connection
// it redials after: see TestWriteProofH1IdleRedialRefused), over HTTP/2
// without TLS and over TLS (ALPN h2): the server processes the POST and
// resets its stream with PROTOCOL_ERROR, net/http resends it on a new
// connection whose dial is refused, and the write is not resent.
func TestWriteProofH2ReusedResendDialRefused(t *testing.T) {
	t.Run("h2c", func(t *testing.T) {
		var processed atomic.Int32
		url := h2cServer(t, &processed, warmThenReset(&processed))
		addr, refused := strings.TrimPrefix(url, "http://"), refusedAddr(t)
		base := func() *http.Transport {
			tr := h2cTransport(t)
			tr.DialContext = dialRefusedAfter(addr, refused, &processed, 2) // the warm-up and the write
			return tr
		}
		plainErr := warmThenPost(t, base(), url)
		plain := processed.Swap(0)
		err := warmThenPost(t, New(base(), WithBackoff(0, 0)), url)
		processedTwice(t, plain, processed.Load(), plainErr, err)
	})
	t.Run("h2", func(t *testing.T) {
		ts := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
		cert, roots := ts.TLS.Certificates[0], ts.Client().Transport.(*http.Transport).TLSClientConfig
		ts.Close()
		var processed atomic.Int32
		addr := h2Server(t, &processed, warmThenReset(&processed), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		url, refused := "https://"+addr, refusedAddr(t)
		base := func() *http.Transport {
			tr := &http.Transport{TLSClientConfig: roots.Clone(), ForceAttemptHTTP2: true, DialContext: dialRefusedAfter(addr, refused, &processed, 2)}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		}
		plainErr := warmThenPost(t, base(), url)
		plain := processed.Swap(0)
		err := warmThenPost(t, New(base(), WithBackoff(0, 0)), url)
		processedTwice(t, plain, processed.Load(), plainErr, err)
	})
}

// idleDeadConn is a client's connection whose read error (the server's
// reset of the idle connection) is held until the connection is closed:
// net/http's read loop, which would have it leave the pool of idle
// connections, learns of it only when net/http has picked it for the next
// request and failed to write it. That is net/http's race with a server
// that closes an idle connection, pinned: the write fails with nothing
// written, as the real socket's, reset, refuses the bytes.
type idleDeadConn struct {
	net.Conn
	dead      chan struct{} // closed when a read failed: the server reset the connection
	closed    chan struct{} // closed by Close
	deadOnce  sync.Once
	closeOnce sync.Once
}

func (c *idleDeadConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.deadOnce.Do(func() { close(c.dead) })
		<-c.closed
	}
	return n, err
}

func (c *idleDeadConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestWriteProofH1IdleRedialRefused: a server (restarting) resets the
// HTTP/1 keep-alive connection it answered a GET on; net/http picks it for
// the POST that follows, writes nothing on it, and dials anew on its own
// (its retry of a request that wrote nothing on a reused connection),
// which is refused: the POST never reached the server, and is resent to
// it once it is back, and created once. A plain client fails, sending it
// nowhere.
func TestWriteProofH1IdleRedialRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"generated key", nil},
		{"no key", []Option{WithoutIdempotencyKeys()}},
		{"plain", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posts atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if r.Method == http.MethodPost {
					posts.Add(1)
					w.WriteHeader(http.StatusCreated)
				}
			}))
			idle := firstIdle(srv)
			srv.Start()
			defer srv.Close()
			conns := make(chan *idleDeadConn, 4)
			dial := secondDialRefused(srv.Listener.Addr().String(), refusedAddr(t))
			base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				dc := &idleDeadConn{Conn: c, dead: make(chan struct{}), closed: make(chan struct{})}
				conns <- dc
				return dc, nil
			}}
			defer base.CloseIdleConnections()
			var rt http.RoundTripper = base
			if tc.name != "plain" {
				rt = New(base, append([]Option{WithBackoff(0, 0)}, tc.opts...)...)
			}

			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/warm", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			sc := <-idle // the server's end, idle
			sc.(*net.TCPConn).SetLinger(0)
			sc.Close() // reset
			<-(<-conns).dead

			req, _ = http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
			resp, err = rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			t.Logf("err %v, posts %d", err, posts.Load())
			if tc.name == "plain" {
				if err == nil || posts.Load() != 0 {
					t.Errorf("plain client: err %v, %d posts; want the refused dial's error, none", err, posts.Load())
				}
				return
			}
			if err != nil || resp.StatusCode != http.StatusCreated || posts.Load() != 1 {
				t.Errorf("err %v, %d posts; want the write that never reached the server resent, and created once", err, posts.Load())
			}
		})
	}
}

// TestWriteProofRetryingBaseDialRefused: a base that resends a request
// once after an error (a middleware over an http.Transport) sends the POST
// on a reused HTTP/1 connection, which the server processes and then
// drops unanswered; its resend's dial is refused. The trace is the one of
// net/http's own resend of a request that wrote nothing (see
// TestWriteProofH1IdleRedialRefused), but the base is not net/http's: the
// write is not resent.
func TestWriteProofRetryingBaseDialRefused(t *testing.T) {
	var processed atomic.Int32
	srv := httptest.NewServer(processedUnanswered(t, &processed))
	defer srv.Close()
	refused := refusedAddr(t)
	base := func() http.RoundTripper {
		tr := &http.Transport{DialContext: secondDialRefused(srv.Listener.Addr().String(), refused)}
		t.Cleanup(tr.CloseIdleConnections)
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := tr.RoundTrip(req)
			if err == nil || req.GetBody == nil {
				return resp, err
			}
			again := req.Clone(req.Context())
			again.Body, _ = req.GetBody()
			return tr.RoundTrip(again)
		})
	}
	plainErr := warmThenPost(t, base(), srv.URL)
	plain := processed.Swap(0)
	err := warmThenPost(t, New(base(), WithBackoff(0, 0)), srv.URL)
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofAbandoningBase: a base that bounds each request by a timer
// of its own (a middleware over an http.Transport) gives up on a POST
// while net/http is still dialing a slow connection for it, and leaves
// that RoundTrip running: net/http got no connection when the base
// returned, but gets one after, and writes the POST, which the server
// processes. The trace of net/http's looking for a connection proves
// nothing through such a base: the write is not resent.
func TestWriteProofAbandoningBase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var processed atomic.Int32
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			processed.Add(1)
			w.WriteHeader(http.StatusCreated)
		})))
		defer srv.Close()
		tr := srv.Transport()
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(100 * time.Millisecond) // a slow handshake
			return dial(ctx, network, addr)
		}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- result{resp, err}
			}()
			select {
			case r := <-done:
				return r.resp, r.err
			case <-time.After(50 * time.Millisecond):
				return nil, errors.New("request timed out") // the RoundTrip goes on
			}
		})
		post := func(rt http.RoundTripper) (int32, error) {
			tr.CloseIdleConnections()
			processed.Store(0)
			err := postTo(rt, srv.URL+"/v1/posts")
			time.Sleep(time.Second) // the RoundTrips left running end
			synctest.Wait()
			return processed.Load(), err
		}
		plain, plainErr := post(base)
		ours, err := post(New(base, WithBackoff(0, 0), WithMaxElapsed(0)))
		processedTwice(t, plain, ours, plainErr, err)
	})
}

// processedUnanswered returns a handler that answers every request but a
// POST, which it counts in processed and then leaves unanswered, its
// connection closed: a server that processed the write and went down.
func processedUnanswered(t *testing.T, processed *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost {
			return
		}
		processed.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	})
}

// dialRefusedOnce returns a DialContext that dials each address as asked,
// but for the n-th dial to target, which it makes to refused: the server
// restarting.
func dialRefusedOnce(target, refused string, n int32) func(context.Context, string, string) (net.Conn, error) {
	var dials atomic.Int32
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == target && dials.Add(1) == n {
			return nil, refusedDial(network, refused)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// TestWriteProofRedirectXKeyRedialRefused: the caller's X-Idempotency-Key,
// set for host A, is copied by http.Client into the POST it follows A's 307
// with, to host B, which ignores keys: not the caller's word for B (see
// TestWriteProofRedirectToAnotherHost), yet a key to net/http, which takes
// the POST for replayable. B processes it on a reused HTTP/1 connection
// and drops the connection unanswered (it is going down); net/http resends
// it on its own, and that dial is refused. The trace has the shape of
// net/http's redial after a connection that wrote nothing, but the write
// was processed: it is not resent.
func TestWriteProofRedirectXKeyRedialRefused(t *testing.T) {
	var processed atomic.Int32
	b := httptest.NewServer(processedUnanswered(t, &processed))
	defer b.Close()
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, b.URL+"/v1/posts", http.StatusTemporaryRedirect)
	}))
	defer a.Close()
	refused := refusedAddr(t)
	send := func(rt func(*http.Transport) http.RoundTripper) error {
		base := &http.Transport{DialContext: dialRefusedOnce(b.Listener.Addr().String(), refused, 2)}
		defer base.CloseIdleConnections()
		c := &http.Client{Transport: rt(base)}
		resp, err := c.Get(b.URL + "/warm") // B's connection, idle for the POST
		if err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
		req.Header.Set("X-Idempotency-Key", "post-1") // for A
		resp, err = c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	plainErr := send(func(tr *http.Transport) http.RoundTripper { return tr })
	plain := processed.Swap(0)
	err := send(func(tr *http.Transport) http.RoundTripper { return New(tr, WithBackoff(0, 0)) })
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofRegisteredH2cResendDialRefused: as
// TestWriteProofH2ReusedResendDialRefused over HTTP/2 without TLS, but the
// HTTP/2 Transport is registered for http URLs on a base that speaks
// HTTP/1 (Transport.RegisterProtocol): the base's own Protocols say
// nothing of it. The server processes the POST and resets its stream with
// PROTOCOL_ERROR, net/http resends it on a new connection whose dial is
// refused: the write is not resent. (net/http reports two GetConn for the
// one reused HTTP/2 connection, its Transport's and its HTTP/2 pool's,
// which the trace of an HTTP/1 redial never has.)
func TestWriteProofRegisteredH2cResendDialRefused(t *testing.T) {
	var processed atomic.Int32
	url := h2cServer(t, &processed, warmThenReset(&processed))
	addr, refused := strings.TrimPrefix(url, "http://"), refusedAddr(t)
	base := func() *http.Transport {
		h2c := h2cTransport(t)
		h2c.DialContext = dialRefusedAfter(addr, refused, &processed, 2) // the warm-up and the write
		tr := &http.Transport{}
		tr.RegisterProtocol("http", h2c)
		return tr
	}
	plainErr := warmThenPost(t, base(), url)
	plain := processed.Swap(0)
	err := warmThenPost(t, New(base(), WithBackoff(0, 0)), url)
	processedTwice(t, plain, processed.Load(), plainErr, err)
}

// TestWriteProofRedirectToAnotherVirtualHost: the caller's Idempotency-Key,
// set for virtual host a.example behind an address, which answers 307 with
// an absolute Location on the address itself; http.Client follows it
// without the Host header, to the address's own virtual host, and copies
// the key: it says nothing of that host, which ignores keys, and its 500
// after processing is not resent.
func TestWriteProofRedirectToAnotherVirtualHost(t *testing.T) {
	var processed atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Host == "a.example" {
			http.Redirect(w, r, srv.URL+"/v1/posts/", http.StatusTemporaryRedirect)
			return
		}
		processed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	keyedPostPlainThenOurs(t, srv.URL+"/v1/posts", "a.example", false, &processed)
}

// TestWriteProofLongRedirectToAnotherHost: the caller's Idempotency-Key,
// set for host A, which answers 307 to host B, which redirects on itself
// past the 64 redirects the Transport walks back (a CheckRedirect that
// sets no bound): the request that reaches B's end carries the key
// http.Client copied, whose first host is not known from it; B ignores
// keys, and its 500 after processing is not resent.
func TestWriteProofLongRedirectToAnotherHost(t *testing.T) {
	var processed atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var n int
		fmt.Sscanf(r.URL.Path, "/r/%d", &n)
		if n < 70 {
			http.Redirect(w, r, fmt.Sprintf("/r/%d", n+1), http.StatusTemporaryRedirect)
			return
		}
		processed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer b.Close()
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, b.URL+"/r/1", http.StatusTemporaryRedirect)
	}))
	defer a.Close()
	keyedPostPlainThenOurs(t, a.URL+"/v1/posts", "", true, &processed)
}

// firstIdle sets srv, not started yet, to hand over the server's side of
// the first of its connections to go idle (a keep-alive connection after
// its first answer), for a test to close it under the client.
func firstIdle(srv *httptest.Server) <-chan net.Conn {
	idle := make(chan net.Conn, 1)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			select {
			case idle <- c:
			default:
			}
		}
	}
	return idle
}
