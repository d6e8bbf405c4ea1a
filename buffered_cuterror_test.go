package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestBufferedResponseCutReadErrorIsTheDeadlines: the error of a success's
// buffered read that the attempt's deadline cut (WithBufferedResponse) is
// the deadline's, context.DeadlineExceeded and a timeout, whether the base's
// body ends its read as the attempt's context is canceled or, blind to
// it, only as the Transport closes it closeGrace later: a Classifier (and
// a Tracer) sees the same cut either way, not the error of a read on a
// body the Transport closed itself.
func TestBufferedResponseCutReadErrorIsTheDeadlines(t *testing.T) {
	for _, blind := range []bool{false, true} {
		name := "context-aware body"
		if blind {
			name = "context-blind body"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				blindBody := &contextBlindBody{closed: make(chan struct{})}
				var calls atomic.Int32
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if calls.Add(1) == 1 {
						var body interface {
							Read([]byte) (int, error)
							Close() error
						} = newStallBody(req.Context(), "")
						if blind {
							body = blindBody
						}
						return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: body, Request: req}, nil
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				var seen error
				cls := func(resp *http.Response, _ *APIError, err error, def Class) Class {
					if err != nil && seen == nil {
						seen = err
					}
					return def
				}
				tr := New(base, WithoutBreaker(), WithBackoff(time.Millisecond, time.Millisecond),
					WithBufferedResponse(1<<20), WithAttemptTimeout(time.Second), WithClassifier(cls))
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v, want the retry's 200", err)
				}
				resp.Body.Close()
				if seen == nil {
					t.Fatalf("the Classifier saw no error for the cut read (%d attempts)", calls.Load())
				}
				if !errors.Is(seen, context.DeadlineExceeded) || !isTimeout(seen) {
					t.Errorf("the Classifier saw %q for the cut read: context.DeadlineExceeded %v, timeout %v; want both",
						seen, errors.Is(seen, context.DeadlineExceeded), isTimeout(seen))
				}
			})
		})
	}
}
