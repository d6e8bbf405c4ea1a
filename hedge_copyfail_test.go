package resilient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingTakenOverBodyBackFromCopysFailedGetBody: a copy that took
// over the attempt's unread body (see TestHedgingCopyTakesOverUnreadBody)
// and whose GetBody then takes its time and fails is never sent: the
// attempt, whose Read began while that GetBody ran (which may rewind the
// one source the attempt reads: see
// TestHedgingNoReclaimWhileCopysGetBodyRuns), waits for it to end, gets
// the body back and sends it, as without hedging. It got the body
// detached: the call retried, its 201 after 830ms in 3 requests, where a
// plain client gets it in 20ms in one (here 40ms, the end of the caller's
// GetBody the attempt waits for).
func TestHedgingTakenOverBodyBackFromCopysFailedGetBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var calls atomic.Int32
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			return got.created(r)
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		rewind := req.GetBody
		var gets atomic.Int32
		req.GetBody = func() (io.ReadCloser, error) {
			if gets.Add(1) == 1 {
				time.Sleep(30 * time.Millisecond) // the copy's, from 10ms to 40ms
				return nil, errors.New("GetBody: file vanished")
			}
			return rewind()
		}
		t0 := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		d := time.Since(t0)
		time.Sleep(time.Second)
		synctest.Wait()
		if resp.StatusCode != 201 || d != 40*time.Millisecond || calls.Load() != 1 {
			t.Errorf("the call got %d after %v in %d requests, want 201 after 40ms in 1: the attempt's answer once the copy's GetBody failed", resp.StatusCode, d, calls.Load())
		}
		got.checkOne(t, data)
	})
}

// TestHedgingTakenOverBodyWaitBounded: the wait of an attempt's Read for
// the GetBody of a copy that took its body over (see
// TestHedgingTakenOverBodyBackFromCopysFailedGetBody) ends at the
// attempt's deadline, here the call's WithMaxElapsed: a GetBody that runs
// for 10 s does not hold the call past 100ms, over a base that waits for
// the body's Read before it returns (net/http's HTTP/1 client does), and
// the cut is no stall of the caller's body (a *RequestError).
func TestHedgingTakenOverBodyWaitBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		base func(got *bodyLog) http.RoundTripper
	}{
		{"base reads the body", func(got *bodyLog) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
				return got.created(r)
			})
		}},
		{"net/http HTTP/1", func(got *bodyLog) http.RoundTripper {
			return &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
				time.Sleep(20 * time.Millisecond)
				client, server := net.Pipe()
				go func() {
					defer server.Close()
					req, err := http.ReadRequest(bufio.NewReader(server))
					if err != nil {
						return
					}
					if _, err := got.created(req); err == nil {
						server.Write([]byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"))
					}
				}()
				return client, nil
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := []byte("abcdefghijkl")
				var got bodyLog
				tr := New(tc.base(&got), WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithMaxElapsed(100*time.Millisecond))
				req := sharedSourcePost(data)
				var gets atomic.Int32
				rewind := req.GetBody
				req.GetBody = func() (io.ReadCloser, error) {
					if gets.Add(1) == 1 {
						time.Sleep(10 * time.Second) // the copy's
					}
					return rewind()
				}
				t0 := time.Now()
				resp, err := tr.RoundTrip(req)
				d := time.Since(t0)
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				var re *RequestError
				if d > 100*time.Millisecond || errors.As(err, &re) {
					t.Errorf("the call ended after %v with %v, want by 100ms (WithMaxElapsed), not the caller's mistake", d, err)
				}
				got.mu.Lock()
				defer got.mu.Unlock()
				for _, b := range got.bodies {
					if b != string(data) {
						t.Errorf("the server got body %q, want %q", b, data)
					}
				}
			})
		})
	}
}

// TestHedgingTakenOverBodyNotBackAfterRetryBegan: the GetBody of a copy
// that took over the attempt's unread body (see
// TestHedgingTakenOverBodyBackFromCopysFailedGetBody) fails only once the
// attempt was decided and the retry loop took the run's body (see
// hedgeRun.sealBody): the host answered 503 before it read the body,
// which the attempt's writer sends on (net/http's does, in a goroutine of
// its own), its Read waiting for that GetBody. The retry waits for the
// copy's body, not the attempt's: the body is not given back then, and
// the writer's Read fails. Given back, the writer read the one source on
// while the retry's GetBody rewound it and the retry sent it: the retry's
// body came out short.
func TestHedgingTakenOverBodyNotBackAfterRetryBegan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := []byte("abcdefghijkl")
		var calls atomic.Int32
		var got bodyLog
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) > 1 {
				return got.created(r)
			}
			time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
			go func() {
				// The writer sends the body on, a byte every 5ms.
				defer r.Body.Close()
				b := make([]byte, 1)
				for {
					if _, err := r.Body.Read(b); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			time.Sleep(time.Millisecond) // the writer's Read began
			// An early 503, whose page the retry loop drains until 60ms.
			page := io.MultiReader(sleepReader(39*time.Millisecond), strings.NewReader("<h1>unavailable</h1>"))
			return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"text/html"}}, Body: io.NopCloser(page), ContentLength: -1, Request: r}, nil
		})
		tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithAttemptTimeout(5*time.Second))
		req := sharedSourcePost(data)
		rewind := req.GetBody
		var gets atomic.Int32
		req.GetBody = func() (io.ReadCloser, error) {
			if gets.Add(1) == 1 {
				time.Sleep(30 * time.Millisecond) // the copy's, from 10ms to 40ms
				return nil, errors.New("GetBody: file vanished")
			}
			return rewind()
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if resp.StatusCode != 201 || calls.Load() != 2 {
			t.Errorf("the call got %d in %d requests, want 201 in 2: the retry's answer", resp.StatusCode, calls.Load())
		}
		got.checkOne(t, data)
	})
}

// sleepReader is a Read that waits d, then ends: a body that takes d to
// come.
type sleepReader time.Duration

func (d sleepReader) Read([]byte) (int, error) {
	time.Sleep(time.Duration(d))
	return 0, io.EOF
}
