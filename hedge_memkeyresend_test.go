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

// TestHedgingMemoryBodyKeyReadsWhileBaseResends: a function that keys a
// layer (BreakerSettings.Key here) reads the body through GetBody, as the
// examples' recipes do, and is called to allow a hedged copy; the base
// meanwhile resent the attempt itself (HTTP/2 after a refused stream,
// HTTP/1 on a reused connection found dead) with a body from the
// attempt's GetBody, the caller's, which Resets the caller's one reader.
// The key must not read that reader while it is Reset: a data race a
// plain client, which calls no key function, never has.
func TestHedgingMemoryBodyKeyReadsWhileBaseResends(t *testing.T) {
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
					// The attempt's stream is refused before the copy is
					// out: the base sends it again, with a body from its
					// GetBody, and waits for its answer.
					time.Sleep(5 * time.Millisecond)
					body, err := req.GetBody()
					if err != nil {
						return nil, err
					}
					b, _ = io.ReadAll(body)
					body.Close()
					mu.Lock()
					bodies = append(bodies, b)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				src := bytes.NewReader(data)
				req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/v1/chat", nil)
				req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
				req.Header.Set("Idempotency-Key", "k1") // the caller's key: hedged
				req.GetBody = func() (io.ReadCloser, error) {
					src.Reset(data)
					return io.NopCloser(src), nil
				}
				// key reads the body through GetBody and rewinds it, as
				// the OpenAI recipe's openaiBodyModel does.
				key := func(r *http.Request) string {
					if r.GetBody == nil {
						return r.URL.Host
					}
					if b, err := r.GetBody(); err == nil {
						io.Copy(io.Discard, b)
						b.Close()
					}
					if again, err := r.GetBody(); err == nil {
						again.Close()
					}
					return r.URL.Host + " model"
				}
				tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithBreaker(BreakerSettings{Key: key}), WithMaxBufferedBody(limit))
				resp, err := roundTrip(t, tr, req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if len(bodies) != 3 {
					t.Fatalf("the server got %d bodies, want 3: the attempt's, its resend, the copy's", len(bodies))
				}
				checkBodiesWhole(t, data, bodies...)
			})
		})
	}
}
