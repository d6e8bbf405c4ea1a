package resilient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingMemoryBodyBaseResendRefillsBuffer: a hedged attempt's body is
// the caller's *bytes.Buffer, whose Read drains it, and the caller's
// GetBody makes it again (a Reset and a write of the encoding: a request
// signed with the time it is sent, here), which the base calls itself to
// resend the attempt (HTTP/2 after a refused stream or a GOAWAY, HTTP/1 on
// a reused connection found dead), as a plain client's does. A copy
// launched before that reads the bytes the call found: over
// WithMaxBufferedBody they were the caller's own memory, which the
// caller's GetBody wrote over while the copy was still sending them (a
// data race, and a copy's body of two encodings, which a plain client,
// making no copy, never sends).
func TestHedgingMemoryBodyBaseResendRefillsBuffer(t *testing.T) {
	for _, limit := range []int64{DefaultMaxBufferedBody, 512} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				first := bytes.Repeat([]byte("abcdefghijklmnop"), 64) // 1 KiB
				again := bytes.Repeat([]byte("ABCDEFGHIJKLMNOP"), 64) // GetBody's encoding, as long
				var mu sync.Mutex
				var bodies [][]byte
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := len(bodies)
					bodies = append(bodies, nil)
					mu.Unlock()
					if i > 0 { // a copy, sending its body at the network's pace
						half := make([]byte, len(first)/2)
						n, _ := io.ReadFull(req.Body, half)
						time.Sleep(10 * time.Millisecond)
						rest, _ := io.ReadAll(req.Body)
						req.Body.Close()
						mu.Lock()
						bodies[i] = append(half[:n], rest...)
						mu.Unlock()
						<-req.Context().Done() // no answer before the attempt's
						return nil, context.Cause(req.Context())
					}
					b, _ := io.ReadAll(req.Body)
					req.Body.Close()
					mu.Lock()
					bodies[i] = b
					mu.Unlock()
					// The attempt's stream is refused once the copy is out: the
					// base sends it again, with a body from its GetBody.
					time.Sleep(15 * time.Millisecond)
					body, err := req.GetBody()
					if err != nil {
						return nil, err
					}
					b, _ = io.ReadAll(body)
					body.Close()
					mu.Lock()
					bodies = append(bodies, b)
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // the copy has sent its body
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				buf := bytes.NewBuffer(append([]byte(nil), first...))
				req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/upload", nil)
				req.Body, req.ContentLength = io.NopCloser(buf), int64(buf.Len())
				req.Header.Set("Idempotency-Key", "k1") // the caller's key: hedged
				req.GetBody = func() (io.ReadCloser, error) {
					buf.Reset()
					buf.Write(again)
					return io.NopCloser(buf), nil
				}
				resp, err := roundTrip(t, New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithMaxBufferedBody(limit)), req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if len(bodies) != 3 {
					t.Fatalf("the server got %d bodies, want 3: the attempt's, the copy's, the attempt's resend", len(bodies))
				}
				for i, b := range bodies {
					if !bytes.Equal(b, first) && !bytes.Equal(b, again) {
						t.Errorf("body %d: the server got %.24q…%.24q, neither the body the call found nor GetBody's", i+1, b, b[len(b)/2:])
					}
				}
			})
		})
	}
}
