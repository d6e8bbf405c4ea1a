package resilient

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file pins the write rule over two paths of net/http the other
// write-proof tests leave out: a POST sent with "Expect: 100-continue",
// and an https POST through an HTTP proxy (CONNECT). Each counts the
// writes a server that ignores keys read whole through the Transport
// against a plain client's over the same kind of base.

// expectServer serves HTTP/1.1 by hand: it answers a GET 200 on a
// keep-alive connection, and a POST as mode says, counting in processed
// each POST whose body it read whole.
func expectServer(t *testing.T, processed *atomic.Int32, mode string) string {
	t.Helper()
	addr, _ := tcpServer(t, func(c net.Conn) {
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.Method == http.MethodGet {
					io.Copy(io.Discard, req.Body)
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
					continue
				}
				switch mode {
				case "continue then close": // processed, unanswered
					c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
					if _, err := io.Copy(io.Discard, req.Body); err == nil {
						processed.Add(1)
					}
				case "417": // the body never sent
					c.Write([]byte("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				case "close after headers": // neither 100 nor an answer
				}
				return
			}
		}()
	})
	return "http://" + addr
}

// TestWriteProofH1ExpectContinue: a POST with "Expect: 100-continue", on
// a keep-alive connection a GET used, to a server that lets the body come
// and then drops the connection unanswered, that refuses the expectation
// (417), or that drops it after the headers: a Classifier that retries
// network errors never has the write processed more often than a plain
// client does.
func TestWriteProofH1ExpectContinue(t *testing.T) {
	for _, mode := range []string{"continue then close", "417", "close after headers"} {
		t.Run(mode, func(t *testing.T) {
			var processed atomic.Int32
			u := expectServer(t, &processed, mode)
			send := func(rt http.RoundTripper) error {
				req, _ := http.NewRequest(http.MethodGet, u+"/warm", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("warm-up: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				req, _ = http.NewRequest(http.MethodPost, u+"/v1/posts", strings.NewReader(`{"text":"hi"}`))
				req.Header.Set("Expect", "100-continue")
				resp, err = rt.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			base := func() *http.Transport {
				// Waits for the server's 100 (or its answer): the
				// server answers, or drops the connection, at once.
				tr := &http.Transport{ExpectContinueTimeout: time.Minute}
				t.Cleanup(tr.CloseIdleConnections)
				return tr
			}
			plainErr := send(base())
			plain := processed.Swap(0)
			err := send(New(base(), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)))
			processedTwice(t, plain, processed.Load(), plainErr, err)
		})
	}
}

// TestWriteProofProxyConnect: an https POST through an HTTP proxy. A proxy
// that refuses the tunnel with a 502 let nothing reach the host: the write
// may be retried, and reaches it never. A proxy that opens the tunnel,
// through which the host processes the write and drops the connection
// unanswered, proves nothing: a Classifier that retries network errors
// has it processed once, as a plain client does.
func TestWriteProofProxyConnect(t *testing.T) {
	var processed atomic.Int32
	host := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err == nil {
			processed.Add(1)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer host.Close()
	for _, tc := range []struct {
		name   string
		tunnel bool
		want   int32 // writes processed, through either client
	}{
		{"CONNECT refused", false, 0},
		{"tunnel dropped", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := tcpServer(t, func(c net.Conn) {
				go func() {
					defer c.Close()
					br := bufio.NewReader(c)
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if !tc.tunnel {
						c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
						return
					}
					hc, err := net.Dial("tcp", req.Host)
					if err != nil {
						return
					}
					defer hc.Close()
					c.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
					go io.Copy(hc, br)
					io.Copy(c, hc)
				}()
			})
			proxy := &url.URL{Scheme: "http", Host: addr}
			base := func() *http.Transport {
				tr := host.Client().Transport.(*http.Transport).Clone()
				tr.Proxy = http.ProxyURL(proxy)
				t.Cleanup(tr.CloseIdleConnections)
				return tr
			}
			plainErr := postTo(base(), host.URL+"/v1/posts")
			plain := processed.Swap(0)
			err := postTo(New(base(), WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), host.URL+"/v1/posts")
			processedTwice(t, plain, processed.Swap(0), plainErr, err)
			if plain != tc.want {
				t.Errorf("plain client: %d writes processed, want %d", plain, tc.want)
			}
			var e *Error
			if !tc.tunnel && (!errors.As(err, &e) || e.Attempts < 2) {
				t.Errorf("err %v: want the write the proxy kept from the host retried", err)
			}
		})
	}
}
