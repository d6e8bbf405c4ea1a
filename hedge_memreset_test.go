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

// TestHedgingMemoryBodyBaseResendResetsReader: a hedged attempt's request
// carries the caller's GetBody, which the base calls itself to resend it
// (HTTP/2 after a refused stream or a GOAWAY, HTTP/1 on a reused
// connection found dead), as a plain client's does. A GetBody that Resets
// the caller's one reader (bytes.Reader.Reset, a write of it) ran while a
// copy launched meanwhile read that reader for its bytes (ReadAt): a data
// race a plain client, which makes no copy, never has. The base's resend
// reads the copies' bytes, not the caller's GetBody.
func TestHedgingMemoryBodyBaseResendResetsReader(t *testing.T) {
	// Within WithMaxBufferedBody the copies read a copy of the bytes; over
	// it, the caller's bytes through a reader of their own.
	for _, limit := range []int64{DefaultMaxBufferedBody, 512} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := bytes.Repeat([]byte("abcdefghijklmnop"), 64) // 1 KiB
				var mu sync.Mutex
				var bodies [][]byte
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					b, _ := io.ReadAll(req.Body)
					req.Body.Close()
					mu.Lock()
					i := len(bodies)
					bodies = append(bodies, b)
					mu.Unlock()
					if i > 0 { // a copy: no answer before the attempt's
						<-req.Context().Done()
						return nil, context.Cause(req.Context())
					}
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
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				src := bytes.NewReader(data)
				req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/upload", nil)
				req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
				req.Header.Set("Idempotency-Key", "k1") // the caller's key: hedged
				req.GetBody = func() (io.ReadCloser, error) {
					src.Reset(data)
					return io.NopCloser(src), nil
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
				checkBodiesWhole(t, data, bodies...)
			})
		})
	}
}
