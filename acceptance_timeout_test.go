package resilient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// This file checks from outside the package what WithAttemptTimeout and
// WithMaxPeek say of the body of the response a call returns.

// slowBody is a response body that yields head, then, after pause, tail,
// unless the attempt's context ends or the body is closed first: it then
// fails, as net/http's body does when its request is canceled or it is
// closed during a Read.
type slowBody struct {
	ctx        context.Context
	head, tail string
	pause      time.Duration
	paused     bool
	closed     chan struct{}
	closeOnce  sync.Once
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.head != "" {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if !b.paused {
		b.paused = true
		t := time.NewTimer(b.pause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-b.ctx.Done():
			return 0, context.Cause(b.ctx)
		case <-b.closed:
			return 0, errors.New("read on closed body")
		}
	}
	if b.tail == "" {
		return 0, io.EOF
	}
	n := copy(p, b.tail)
	b.tail = b.tail[n:]
	return n, nil
}

func (b *slowBody) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}

// TestAttemptTimeoutAndTheReturnedBody: the README says WithAttemptTimeout
// "bounds each attempt until its response is handed over", and its Bounds
// section that the library's own reads of a response (an error envelope's
// peek) are bounded by the attempt's deadline and by 2 s. So the body of
// a success is the caller's, readable whole however slowly it comes
// after the attempt timeout; the body of an error response, whose envelope
// the Transport peeks within the attempt, is handed over as the bytes the
// peek read, then the error that cut it, when it stalls past the
// attempt's deadline (or, with no deadline, for 2 s). A body that is not
// JSON is not peeked: it is the caller's whole.
func TestAttemptTimeoutAndTheReturnedBody(t *testing.T) {
	const head, tail = `{"error":{"code":"service_unavailable",`, `"message":"later"}}`
	for _, tc := range []struct {
		name     string
		status   int
		ct       string
		opts     []resilient.Option
		returned time.Duration // when RoundTrip returns
		whole    bool          // the caller reads head+tail; else head, then an error
	}{
		{"success", 200, "application/json", []resilient.Option{resilient.WithAttemptTimeout(time.Second)}, 0, true},
		{"error, not JSON", 503, "text/html", []resilient.Option{resilient.WithAttemptTimeout(time.Second)}, 0, true},
		{"error envelope, attempt timeout", 503, "application/json", []resilient.Option{resilient.WithAttemptTimeout(time.Second)}, time.Second, false},
		{"error envelope, budget", 503, "application/json", []resilient.Option{resilient.WithMaxElapsed(time.Second)}, time.Second, false},
		{"error envelope, no deadline", 503, "application/json", []resilient.Option{resilient.WithMaxElapsed(0)}, 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := roundTrip(func(req *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ct}},
						Body: &slowBody{ctx: req.Context(), head: head, tail: tail, pause: 5 * time.Second, closed: make(chan struct{})}, ContentLength: -1, Request: req}, nil
				})
				tr := resilient.New(base, append([]resilient.Option{resilient.WithMaxRetries(0)}, tc.opts...)...)
				req, _ := http.NewRequest("GET", "http://api.test/v1/posts", nil)
				start := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != tc.status {
					t.Fatalf("RoundTrip = %v, %v; want the %d", resp, err, tc.status)
				}
				if d := time.Since(start); d != tc.returned {
					t.Errorf("RoundTrip returned after %v, want %v", d, tc.returned)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case tc.whole && (err != nil || string(b) != head+tail):
					t.Errorf("the caller read %q, %v; want the whole body %q", b, err, head+tail)
				case !tc.whole && (err == nil || string(b) != head):
					t.Errorf("the caller read %q, %v; want the bytes peeked, %q, then the error that cut the peek", b, err, head)
				}
			})
		})
	}
}
