package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// contextBlindBody is a response body of a base that no context reaches
// (an in-memory or hand-made RoundTripper): it yields a byte every half
// second (drip), or nothing at all, whatever its request's context says,
// until it is closed. It counts its Close calls.
type contextBlindBody struct {
	drip   bool
	closed chan struct{}
	mu     sync.Mutex
	closes int
}

func (b *contextBlindBody) Read(p []byte) (int, error) {
	var tick <-chan time.Time
	if b.drip {
		timer := time.NewTimer(500 * time.Millisecond)
		defer timer.Stop()
		tick = timer.C
	}
	select {
	case <-tick:
		return copy(p, "x"), nil
	case <-b.closed:
		return 0, errors.New("read on a closed body")
	}
}

func (b *contextBlindBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closes++; b.closes == 1 {
		close(b.closed)
	}
	return nil
}

func (b *contextBlindBody) numCloses() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closes
}

// TestContextBlindBodyReadBounded: what the Transport reads of a response
// itself (the peek at a 503's error envelope, the drain of the response it
// retries past) is bounded in time even when the base's body ignores its
// request's context, which is all the attempt's deadline and the 2 s
// bound cut: the body is closed under the read soon after, once. Such a
// body that dripped was drained to 64 KiB, a byte each half second (9
// hours); one that stalled held the call for ever. A plain client returns
// the 503 at once.
func TestContextBlindBodyReadBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		ct   string
		drip bool
	}{
		{"JSON that drips", "application/json", true},
		{"JSON that stalls", "application/json", false},
		{"text that drips", "text/plain", true},
		{"text that stalls", "text/plain", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := &contextBlindBody{drip: tc.drip, closed: make(chan struct{})}
				start := time.Now()
				resp, err := contextBlindCall(t, context.Background(), body, 503, tc.ct, 0)
				took := time.Since(start)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("RoundTrip = %v, %v; want the retry's 200", resp, err)
				} else {
					resp.Body.Close()
				}
				// The peek, then the drain: each 2 s, and the grace
				// before the Close.
				if bound := 2 * (maxReadWait + closeGrace); took > bound {
					t.Errorf("RoundTrip took %v reading the 503's body, want at most %v", took, bound)
				}
				if n := body.numCloses(); n != 1 {
					t.Errorf("503's body closed %d times, want once", n)
				}
			})
		})
	}
}

// contextBlindCall sends a GET through a Transport with opts, whose base
// answers body first, with status and Content-Type ct, after late (a
// base that answers past the attempt's deadline: no context reaches it),
// then a 200 at once; it returns the call's response or error, one of
// them nil, or fails t if the call still runs after an hour.
func contextBlindCall(t *testing.T, ctx context.Context, body *contextBlindBody, status int, ct string, late time.Duration, opts ...Option) (*http.Response, error) {
	t.Helper()
	var calls atomic.Int32
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			time.Sleep(late)
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ct}}, ContentLength: -1, Body: body, Request: req}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	tr := New(base, append([]Option{WithoutBreaker(), WithBackoff(time.Millisecond, time.Millisecond)}, opts...)...)
	done := make(chan struct{})
	var (
		resp *http.Response
		err  error
	)
	go func() {
		defer close(done)
		resp, err = tr.RoundTrip(newRequest(t, ctx, "GET", "http://api.test/", nil))
	}()
	select {
	case <-done:
	case <-time.After(time.Hour):
		body.Close() // let the bubble end
		<-done
		t.Fatalf("RoundTrip still reading the first answer's body after an hour (%d attempts)", calls.Load())
	}
	if (resp == nil) == (err == nil) {
		t.Fatalf("RoundTrip = %v, %v; want exactly one non-nil", resp, err)
	}
	return resp, err
}

// TestContextBlindBodyCutByCloseClosedOnce: a body the Transport cuts by
// closing it, as it does when no deadline of its own applies (no budget,
// WithMaxElapsed(0), or a caller's deadline that comes first), is closed
// once, as one cut through a context then closed is: a base's Close
// need not bear a second call (io.Closer leaves it undefined).
func TestContextBlindBodyCutByCloseClosedOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ct       string
		deadline bool // a caller's deadline, before the budget's end
	}{
		{"JSON, no budget", "application/json", false},
		{"text, no budget", "text/plain", false},
		{"JSON, caller's deadline", "application/json", true},
		{"text, caller's deadline", "text/plain", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := &contextBlindBody{closed: make(chan struct{})}
				ctx := context.Background()
				var opts []Option
				if tc.deadline {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Minute)
					defer cancel()
				} else {
					opts = append(opts, WithMaxElapsed(0))
				}
				resp, err := contextBlindCall(t, ctx, body, 503, tc.ct, 0, opts...)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("RoundTrip = %v, %v; want the retry's 200", resp, err)
				}
				resp.Body.Close()
				if n := body.numCloses(); n != 1 {
					t.Errorf("503's body closed %d times, want once", n)
				}
			})
		})
	}
}
