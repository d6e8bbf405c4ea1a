package resilient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestMemoryBodyResendByBaseGetBody: a retry or a hedged copy of a body in
// memory sends a copy of its bytes (see memoryBody), but its request
// carried the caller's GetBody, which the base transport calls itself to
// resend it: HTTP/2 does on a refused stream or a GOAWAY (see net/http's
// http2shouldRetryRequest), whatever the method, HTTP/1 on a reused
// connection found dead (rewindBody). A caller's GetBody that seeks its one
// reader back rewound it under the writer of the attempt before, which
// still reads it (an early answer, HTTP/2 sending the body after the
// headers; a hedged attempt still uploading): a data race on the caller's
// reader, and both writers read one source, each a part of it. A plain
// client's GetBody is called by net/http only for the one request that
// reads that reader. The attempt made from the bytes carries a GetBody of
// its own, of those bytes.
func TestMemoryBodyResendByBaseGetBody(t *testing.T) {
	for _, c := range []struct {
		hedged bool
		limit  int64 // WithMaxBufferedBody: over it, the caller's bytes, not a copy
	}{{false, DefaultMaxBufferedBody}, {true, DefaultMaxBufferedBody}, {false, 512}, {true, 512}} {
		hedged := c.hedged
		name := "retry"
		if hedged {
			name = "hedged"
		}
		t.Run(fmt.Sprintf("%s/limit=%d", name, c.limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := bytes.Repeat([]byte("abcdefghijklmnop"), 64) // 1 KiB
				var mu sync.Mutex
				var got [][]byte // what each request's writer read, in order of arrival
				var writers sync.WaitGroup
				// slowRead reads body as an HTTP/2 writer does, 64 bytes
				// every step, to its end, into got[i].
				slowRead := func(i int, body io.ReadCloser, step time.Duration) {
					defer body.Close()
					chunk := make([]byte, 64)
					for {
						n, err := body.Read(chunk)
						mu.Lock()
						got[i] = append(got[i], chunk[:n]...)
						mu.Unlock()
						if err != nil {
							return
						}
						time.Sleep(step)
					}
				}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := len(got)
					got = append(got, nil)
					mu.Unlock()
					if i == 0 {
						// The attempt: its body is sent on after the
						// answer, an early 503 (retry), or while it
						// waits for its answer (hedged).
						if !hedged {
							writers.Go(func() { slowRead(i, req.Body, 6*time.Millisecond) })
							return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
						}
						slowRead(i, req.Body, 6*time.Millisecond)
						return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
					}
					// The retry, or the copy: its stream refused once its
					// body began, the base resends it with a body from
					// the request's GetBody, as net/http's HTTP/2 does.
					chunk := make([]byte, 64)
					req.Body.Read(chunk)
					req.Body.Close()
					body, err := req.GetBody()
					if err != nil {
						return nil, err
					}
					mu.Lock()
					got = append(got, nil)
					j := len(got) - 1
					mu.Unlock()
					slowRead(j, body, 5*time.Millisecond)
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				src := bytes.NewReader(data)
				req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/upload", nil)
				req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
				req.Header.Set("Idempotency-Key", "k1") // the caller's key: retried, and hedged
				var gets atomic.Int32
				req.GetBody = func() (io.ReadCloser, error) {
					gets.Add(1)
					_, err := src.Seek(0, io.SeekStart)
					return io.NopCloser(src), err
				}
				opts := []Option{WithBackoff(10*time.Millisecond, 10*time.Millisecond), WithMaxBufferedBody(c.limit)}
				if hedged {
					opts = append(opts, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				}
				resp, err := roundTrip(t, New(base, opts...), req)
				if err == nil {
					resp.Body.Close()
				}
				writers.Wait()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if len(got) != 3 {
					t.Fatalf("the server got %d bodies, want 3: the attempt's, the first send of the second, its resend", len(got))
				}
				checkBodiesWhole(t, data, got[0], got[2])
				if n := gets.Load(); n != 0 {
					t.Errorf("the caller's GetBody was called %d times; want none (its reader is the attempt's, still read)", n)
				}
			})
		})
	}
}

// checkBodiesWhole reports each of bodies, what the server got, that is not
// data, the body the caller sent.
func checkBodiesWhole(t *testing.T, data []byte, bodies ...[]byte) {
	t.Helper()
	for i, b := range bodies {
		if !bytes.Equal(b, data) {
			t.Errorf("body %d: the server got %d bytes, not the %d the caller sent (or not in their order)", i+1, len(b), len(data))
		}
	}
}
