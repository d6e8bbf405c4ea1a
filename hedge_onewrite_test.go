package resilient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingInMemoryBodyOneWrite: an attempt sends a body in memory
// (http.NewRequest's *bytes.Buffer, *bytes.Reader or *strings.Reader) as it
// is, so that net/http writes it with its headers in one write, as a plain
// client does (TestInMemoryBodyOneWrite). A hedged copy of it, its body
// from the same GetBody, was wrapped in a reader of the Transport's: it
// went out in two writes (two packets, the headers flushed first) where
// the attempt it copies went out in one.
func TestHedgingInMemoryBodyOneWrite(t *testing.T) {
	for _, body := range []func() io.Reader{
		func() io.Reader { return strings.NewReader("hello") },
		func() io.Reader { return bytes.NewReader([]byte("hello")) },
		func() io.Reader { return bytes.NewBufferString("hello") },
	} {
		t.Run(fmt.Sprintf("%T", body()), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempt, copy := hedgedWrites(t, body())
				if copy != attempt {
					t.Errorf("POST %T hedged: the copy went out in %d writes, the attempt in %d; want %d, as the attempt (and a plain client)", body(), copy, attempt, attempt)
				}
			})
		})
	}
}

// hedgedWrites sends a keyed POST of body through a hedging Transport over
// a pipe to a server whose first answer comes after a second, so that one
// copy is sent on a connection of its own, and returns the writes of the
// attempt's connection and of the copy's. It runs inside a synctest bubble.
func hedgedWrites(t *testing.T, body io.Reader) (attempt, copy int32) {
	t.Helper()
	var mu sync.Mutex
	var conns []*writeCounter // one per connection, in the order dialed
	served := 0
	base := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		w := new(writeCounter)
		mu.Lock()
		conns = append(conns, w)
		mu.Unlock()
		go func() {
			defer server.Close()
			br := bufio.NewReader(server)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				mu.Lock()
				served++
				slow := served == 1
				mu.Unlock()
				if slow {
					time.Sleep(time.Second) // the slow answer a copy is for
				}
				if _, err := io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
			}
		}()
		return countedConn{client, w}, nil
	}}
	tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
	req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/v1/posts", body)
	req.Header.Set("Idempotency-Key", "k1") // the caller's key: its word that the host dedupes
	rep := new(Report)
	req = req.WithContext(WithReport(req.Context(), rep))
	resp, err := roundTrip(t, tr, req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(2 * time.Second) // the slow answer ends, on a connection closed
	base.CloseIdleConnections()
	synctest.Wait()
	mu.Lock()
	defer mu.Unlock()
	if rep.Hedges != 1 || len(conns) != 2 {
		t.Fatalf("Report.Hedges = %d over %d connections; want one copy, on a connection of its own", rep.Hedges, len(conns))
	}
	return conns[0].writes.Load(), conns[1].writes.Load()
}
