package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestHedgingNoReclaimWhileCopysGetBodyRuns: an attempt whose unread body
// a first copy took over and gave back (the rate limiter refused that
// copy), and a second copy took over again, does not take it back while
// the second copy's GetBody still runs: that GetBody rewinds the one
// source the attempt would be reading, and the server would get a write
// whole of the wrong bytes (the first half twice). The attempt fails
// without reading the source, and the copy sends the body, as when the
// attempt's Read comes before any copy's GetBody returned.
func TestHedgingNoReclaimWhileCopysGetBodyRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		src := &sharedSource{bytes.NewReader(data)} // not in memory, a file (see memoryBody)
		var mu sync.Mutex
		var gets, calls int
		var whole []string
		req, _ := http.NewRequestWithContext(WithIdempotencyKey(context.Background(), "k1"), "POST", "http://api.test/v1/posts", io.NopCloser(src))
		req.ContentLength = int64(len(data))
		req.GetBody = func() (io.ReadCloser, error) {
			mu.Lock()
			gets++
			slow := gets == 2
			mu.Unlock()
			if slow {
				time.Sleep(10 * time.Millisecond) // the second copy's GetBody takes its time, then rewinds
			}
			_, err := src.Seek(0, io.SeekStart)
			return io.NopCloser(src), err
		}
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			calls++
			first := calls == 1
			mu.Unlock()
			if first {
				time.Sleep(25 * time.Millisecond) // the attempt's dial, past both copies' launch
			}
			// The body goes out in two writes, a slow upload: the
			// server has the write whole once it has its
			// ContentLength bytes.
			b := make([]byte, len(data))
			if _, err := io.ReadFull(r.Body, b[:6]); err != nil {
				r.Body.Close()
				return nil, err
			}
			time.Sleep(10 * time.Millisecond)
			if _, err := io.ReadFull(r.Body, b[6:]); err != nil {
				r.Body.Close()
				return nil, err
			}
			r.Body.Close()
			mu.Lock()
			whole = append(whole, string(b))
			mu.Unlock()
			return &http.Response{StatusCode: 201, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		// One token every 15ms: the attempt takes it at 0, the first
		// copy (10ms) is refused, the second (20ms) gets one.
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 2}),
			WithRateLimit(rate.Every(15*time.Millisecond), 1), WithAttemptTimeout(5*time.Second))
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, b := range whole {
			if b != string(data) {
				t.Errorf("the server got a write whole with body %q, want %q (RoundTrip: %v)", b, data, err)
			}
		}
		if err != nil || resp.StatusCode != 201 || len(whole) != 1 {
			t.Errorf("RoundTrip: %v, %v; the server got %d writes whole, want 201 and one", resp, err, len(whole))
		}
	})
}
