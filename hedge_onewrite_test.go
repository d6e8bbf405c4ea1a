package resilient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
// the attempt it copies went out in one. So it goes too with a GetBody of
// the caller's own that seeks one reader back: the attempt was watched,
// two writes, and the copy waited for it; both now read the bytes (see
// memoryBody), in one write each, and that GetBody is not called.
func TestHedgingInMemoryBodyOneWrite(t *testing.T) {
	for _, own := range []bool{false, true} {
		for _, body := range []func() io.Reader{
			func() io.Reader { return strings.NewReader("hello") },
			func() io.Reader { return bytes.NewReader([]byte("hello")) },
			func() io.Reader { return bytes.NewBufferString("hello") },
		} {
			t.Run(fmt.Sprintf("%T/own=%v", body(), own), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					gets := 0
					var mod func(*http.Request)
					if own {
						mod = func(req *http.Request) {
							src := body()
							req.Body = io.NopCloser(src)
							req.GetBody = func() (io.ReadCloser, error) {
								gets++
								return nil, errors.New("GetBody called")
							}
						}
					}
					attempt, copy := hedgedWrites(t, body(), mod)
					if attempt != 1 || copy != 1 {
						t.Errorf("POST %T hedged: the attempt went out in %d writes, the copy in %d; want 1 each, as a plain client", body(), attempt, copy)
					}
					if gets != 0 {
						t.Errorf("the caller's GetBody was called %d times, want none", gets)
					}
				})
			})
		}
	}
}

// hedgedWrites sends a keyed POST of body through a hedging Transport over
// a pipe to a server whose first answer comes after a second, so that one
// copy is sent on a connection of its own, and returns the writes of the
// attempt's connection and of the copy's; mod, if not nil, changes the
// request first. It runs inside a synctest bubble.
func hedgedWrites(t *testing.T, body io.Reader, mod func(*http.Request)) (attempt, copy int32) {
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
	if mod != nil {
		mod(req)
	}
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
