package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"weak"
)

// streamHoldingRequest is the body of a response that holds the request
// it answers for as long as it lives, as net/http's does (its readLoop
// waits for the body to be read, with the request in hand): a stream the
// caller reads long after the call.
type streamHoldingRequest struct {
	io.Reader
	req *http.Request
}

func (*streamHoldingRequest) Close() error { return nil }

// TestCaptureReleasedWhenAHedgedCopyWins: a keyed write whose body has no
// GetBody is captured, and a hedged copy sends the capture's bytes. Once
// the call has ended, the capture lets go of them (see
// TestCaptureReleasedWhenTheCallEnds): the caller's bytes must not stay
// reachable from the response, which may be a stream that lives long,
// where a plain client keeps none of them. When the copy answered first,
// the response holds the copy's request, whose body read the capture's
// bytes: they stayed reachable for the stream's life. Measured by the
// garbage collector, not by the capture's fields.
func TestCaptureReleasedWhenAHedgedCopyWins(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hedged bool
	}{
		{"not hedged", false},
		{"hedged copy wins", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := bytes.Repeat([]byte("a"), 512<<10) // within the capture's limit
				var mu sync.Mutex
				calls := 0
				var buf weak.Pointer[byte]
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					i := calls
					calls++
					mu.Unlock()
					b, err := io.ReadAll(req.Body)
					if !bytes.Equal(b, data) || err != nil {
						t.Errorf("request %d sent %d bytes, %v; want the %d of the body", i, len(b), err, len(data))
					}
					if i == 0 {
						if cr, ok := req.Body.(*captureReader); ok {
							cr.c.mu.Lock()
							if len(cr.c.buf) > 0 {
								buf = weak.Make(&cr.c.buf[0])
							}
							cr.c.mu.Unlock()
						}
					}
					req.Body.Close()
					if i == 0 && tc.hedged {
						<-req.Context().Done() // the copy answers first
						return nil, context.Cause(req.Context())
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1,
						Body: &streamHoldingRequest{strings.NewReader("event"), req}, Request: req}, nil
				})
				opts := []Option{WithKeyHonoringHosts("api.test")}
				if tc.hedged {
					opts = append(opts, WithHedging(Hedging{Delay: 20 * time.Millisecond}))
				}
				req := newRequest(t, context.Background(), http.MethodPost, "http://api.test/v1/stream", nil)
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
				resp, err := New(rt, opts...).RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if want := 1 + btoi(tc.hedged); calls != want {
					t.Fatalf("%d requests, want %d", calls, want)
				}
				if buf == (weak.Pointer[byte]{}) {
					t.Fatal("the first attempt's body is not the capture's reader")
				}
				data = nil
				runtime.GC()
				runtime.GC()
				if buf.Value() != nil {
					t.Errorf("with the response held, the capture's %d bytes are still reachable after the call ended, want none", 512<<10)
				}
				runtime.KeepAlive(resp)
				if b := readBody(t, resp); b != "event" {
					t.Errorf("response %q, want %q", b, "event")
				}
			})
		})
	}
}
