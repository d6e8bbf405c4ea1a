package resilient

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// rawServer serves on a loopback listener: it reads each connection's
// request, its body included, writes answer(n) for the n-th (from 1) and
// closes the connection. It returns the server's address, the count of
// requests it read, and a function that stops it.
func rawServer(t *testing.T, answer func(n int32) string) (string, *atomic.Int32, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits := new(atomic.Int32)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, answer(hits.Add(1)))
			}
			c.Close()
		}
	})
	return ln.Addr().String(), hits, func() { ln.Close(); wg.Wait() }
}

// getRaw sends a GET through a Transport over base (a new http.Transport
// when nil) to a rawServer, and returns the requests it read and the
// call's error.
func getRaw(t *testing.T, base *http.Transport, answer func(n int32) string) (int32, error) {
	t.Helper()
	addr, hits, stop := rawServer(t, answer)
	if base == nil {
		base = &http.Transport{}
	}
	resp, err := roundTrip(t, New(base, WithBackoff(0, 0)), newRequest(t, context.Background(), "GET", "http://"+addr+"/v1/items", nil))
	if err == nil {
		resp.Body.Close()
	}
	base.CloseIdleConnections()
	stop()
	return hits.Load(), err
}

// TestClassifyHeaderCutRetried: a connection cut while the server wrote
// its header block (a proxy restarting, a server killed mid-answer) in a
// header's name fails net/http's read with net/textproto's "malformed MIME
// header: missing colon", quoting the part of the name that came; in the
// status line, with "malformed HTTP response" or "malformed HTTP status
// code". Neither is framing of the server's, which a retry on a fresh
// connection does not meet: a GET cut so is retried, as one cut anywhere
// else in its header block is. A server that cuts every answer so is sent
// the GET twice, and one that does not speak HTTP once.
func TestClassifyHeaderCutRetried(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
	for name, cut := range map[string]string{
		"in a name":        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Contr",
		"in a second name": "HTTP/1.1 200 OK\r\nX-Request-Id: r1\r\nX",
		"in a value":       "HTTP/1.1 200 OK\r\nContent-Type: applic",
		"in the status":    "HTTP/1.1 2",
		"in the version":   "HTTP/1.",
	} {
		n, err := getRaw(t, nil, func(n int32) string {
			if n == 1 {
				return cut
			}
			return ok
		})
		if n != 2 || err != nil {
			t.Errorf("headers cut %s: the server got the GET %d times (error %v); want twice, and the second answer", name, n, err)
		}
		if name == "in a value" {
			continue // io.ErrUnexpectedEOF: retried as any cut is
		}
		n, err = getRaw(t, nil, func(int32) string { return cut })
		if n != 2 || err == nil {
			t.Errorf("headers always cut %s: the server got the GET %d times (error %v); want twice, and the error", name, n, err)
		}
	}
	if n, err := getRaw(t, nil, func(int32) string { return "SSH-2.0-OpenSSH_9.6\r\n" }); n != 1 || err == nil {
		t.Errorf("an SSH server: it got the GET %d times (error %v); want once, and the error", n, err)
	}
}
