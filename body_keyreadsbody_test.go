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

// TestMemoryBodyKeyReadsBodyWhileSent: a function that keys a layer
// (BreakerSettings.Key, which keys the retry budget too, or
// WithRateLimitKey) may read the request's body through its GetBody, as
// the examples' OpenAI recipe does to name the model (openai-go's GetBody
// seeks back and returns the one reader the request sends: the recipe
// reads it, then calls GetBody again to rewind it, "read before it is
// sent"). The Transport called it with the caller's request after the
// attempt was sent: to decide a retry (the retry budget, the breaker's and
// the rate limiter's forecasts) and to allow a hedged copy, while the
// attempt's transport still sent that reader (an early answer, a slow
// upload that the copy is for). The caller's reader was rewound under
// the writer, which sent its first bytes twice, and the bytes after them
// never (a data race too). A plain client never reads the body again once
// it is handed to the transport. Those keys read a body of the bytes that
// does not move the caller's reader.
func TestMemoryBodyKeyReadsBodyWhileSent(t *testing.T) {
	for _, c := range []struct {
		name   string
		hedged bool
		rate   bool // the key is the rate limiter's (WithRateLimitKey), not the breaker's
	}{
		{"retry/breaker-key", false, false},
		{"retry/rate-limit-key", false, true},
		{"hedged/breaker-key", true, false},
	} {
		for _, limit := range []int64{DefaultMaxBufferedBody, 512} { // over it, the caller's bytes, not a copy

			t.Run(fmt.Sprintf("%s/limit=%d", c.name, limit), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					data := bytes.Repeat([]byte("abcdefghijklmnop"), 64) // 1 KiB
					var mu sync.Mutex
					var got [][]byte // what each request's writer read, in order of arrival
					var writers sync.WaitGroup
					var sending atomic.Bool // the attempt's writer still reads the caller's reader
					// slowRead reads body as a writer does, 64 bytes every
					// step, to its end, into got[i].
					slowRead := func(i int, body io.ReadCloser, step time.Duration) {
						defer body.Close()
						chunk := make([]byte, 64)
						for {
							time.Sleep(step)
							n, err := body.Read(chunk)
							mu.Lock()
							got[i] = append(got[i], chunk[:n]...)
							mu.Unlock()
							if err != nil {
								return
							}
						}
					}
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						mu.Lock()
						i := len(got)
						got = append(got, nil)
						mu.Unlock()
						if i > 0 {
							b, _ := io.ReadAll(req.Body)
							req.Body.Close()
							mu.Lock()
							got[i] = b
							mu.Unlock()
							if c.hedged { // a copy: no answer before the attempt's
								<-req.Context().Done()
								return nil, context.Cause(req.Context())
							}
							return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
						}
						sending.Store(true)
						defer func() {
							if c.hedged {
								sending.Store(false)
							}
						}()
						if !c.hedged {
							// An early 503: the body is sent on after the
							// answer, its first bytes read before it.
							chunk := make([]byte, 64)
							n, _ := req.Body.Read(chunk)
							got[i] = append(got[i], chunk[:n]...)
							writers.Go(func() {
								slowRead(i, req.Body, 6*time.Millisecond)
								sending.Store(false)
							})
							return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
						}
						// A slow upload: the copy goes out while it is sent.
						slowRead(i, req.Body, 6*time.Millisecond)
						return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
					})
					src := bytes.NewReader(data)
					req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/v1/chat", nil)
					req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
					req.Header.Set("Idempotency-Key", "k1") // the caller's key: retried, and hedged
					var late atomic.Int32
					req.GetBody = func() (io.ReadCloser, error) { // openai-go's
						if sending.Load() {
							late.Add(1)
						}
						_, err := src.Seek(0, io.SeekStart)
						return io.NopCloser(src), err
					}
					// key reads the body through GetBody and rewinds it, as
					// the OpenAI recipe's openaiBodyModel does.
					key := func(r *http.Request) string {
						if r.GetBody == nil {
							return r.URL.Host
						}
						if b, err := r.GetBody(); err == nil && b != nil {
							io.Copy(io.Discard, io.LimitReader(b, r.ContentLength))
							b.Close()
						}
						if again, err := r.GetBody(); err == nil && again != nil {
							again.Close()
						}
						return r.URL.Host + " model"
					}
					opts := []Option{WithBackoff(10*time.Millisecond, 10*time.Millisecond), WithMaxBufferedBody(limit)}
					if c.rate {
						opts = append(opts, WithRateLimitKey(key))
					} else {
						opts = append(opts, WithBreaker(BreakerSettings{Key: key}))
					}
					if c.hedged {
						opts = append(opts, WithHedging(Hedging{Delay: 10 * time.Millisecond}))
					}
					resp, err := roundTrip(t, New(base, opts...), req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					writers.Wait()
					synctest.Wait()
					mu.Lock()
					defer mu.Unlock()
					if len(got) != 2 {
						t.Fatalf("the server got %d bodies, want 2: the attempt's and the retry's or the copy's", len(got))
					}
					checkBodiesWhole(t, data, got...)
					if n := late.Load(); n != 0 {
						t.Errorf("the caller's GetBody was called %d times while the attempt's transport still sent its reader; want none", n)
					}
				})
			})
		}
	}
}
