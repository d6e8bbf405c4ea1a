package resilient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// timeoutMiddleware bounds each attempt until its response headers arrive
// (and its error envelope, if any, has been peeked). After that the timer
// stops: the body of the response is not bounded, and the attempt's context
// is released when the body is closed. A zero d means no middleware.
func timeoutMiddleware(d time.Duration) Middleware {
	if d <= 0 {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &attemptTimeout{next: next, d: d}
	}
}

type attemptTimeout struct {
	next http.RoundTripper
	d    time.Duration
}

func (t *attemptTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTripAttempt(req, nil)
}

func (t *attemptTimeout) roundTripAttempt(req *http.Request, st *attemptState) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithCancelCause(parent)
	timer := time.AfterFunc(t.d, func() { cancel(ErrAttemptTimeout) })
	resp, err := roundTripNext(t.next, req.WithContext(ctx), st)
	timedOut := !timer.Stop() && parent.Err() == nil
	if err != nil {
		cancel(nil)
		if timedOut {
			err = fmt.Errorf("%w after %v: %w", ErrAttemptTimeout, t.d, err)
		}
		return nil, err
	}
	// When the deadline fired while an error envelope was peeked, the
	// response is returned all the same and its body ends with the error.
	resp.Body = &cancelBody{rc: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases the attempt's context when the body is closed.
type cancelBody struct {
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (b *cancelBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *cancelBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() { b.cancel(nil) })
	return err
}
