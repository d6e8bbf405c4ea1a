package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// queuedBehindPauses sends 4 calls, 1 ms apart, to a host limited to one
// attempt in flight (see queuedBehind), its first throttled answers 429
// with Retry-After: 20 and the others 200; it returns the calls' statuses
// and when the host got each request. Run it in a synctest bubble.
func queuedBehindPauses(t *testing.T, throttled int) (codes []int, arrivals []time.Duration) {
	t.Helper()
	return queuedBehind(t, 4, func(n int, resp *http.Response) {
		if n < throttled {
			resp.StatusCode = http.StatusTooManyRequests
			resp.Header.Set("Retry-After", "20")
		}
	})
}

// queuedBehind sends calls, 1 ms apart, to a host limited to one attempt
// in flight (WithMaxInFlight(1), no retries), which answers each request
// after 1 s with a 200 that answer may change (n counts the requests from
// 0); it returns the calls' statuses and when the host got each request.
// Run it in a synctest bubble.
func queuedBehind(t *testing.T, calls int, answer func(n int, resp *http.Response)) (codes []int, arrivals []time.Duration) {
	t.Helper()
	var mu sync.Mutex
	start := time.Now()
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		n := len(arrivals)
		arrivals = append(arrivals, time.Since(start))
		mu.Unlock()
		time.Sleep(time.Second)
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}
		answer(n, resp)
		return resp, nil
	})
	tr := New(base, WithMaxInFlight(1), WithMaxRetries(0))
	var wg sync.WaitGroup
	codes = make([]int, calls)
	for i := range codes {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond) // in this order
			code, err := getIn(t, tr, context.Background(), "http://api.test/x")
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			codes[i] = code
		})
	}
	wg.Wait()
	return codes, arrivals
}

// TestMaxInFlightQueuedAttemptWaitsForAPauseLearnedMeanwhile pins that a
// 429 answered while attempts wait for a slot of its host pauses them too:
// an attempt queued behind the one that got the 429 is not sent into the
// pause when the slot comes to it, but waits for the pause's end, as a
// call that comes after the 429 does (README: the limiter "pauses every
// goroutine of that quota together after a 429").
func TestMaxInFlightQueuedAttemptWaitsForAPauseLearnedMeanwhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		codes, arrivals := queuedBehindPauses(t, 1)
		if codes[0] != http.StatusTooManyRequests {
			t.Errorf("the first call: %d, want its 429", codes[0])
		}
		for i, c := range codes[1:] {
			if c != http.StatusOK {
				t.Errorf("queued call %d: %d, want 200 after the pause", i+1, c)
			}
		}
		pauseEnd := time.Second + 20*time.Second
		for _, at := range arrivals[1:] {
			if at < pauseEnd {
				t.Errorf("the server got requests at %v; want none during the pause (1s to %v) that the first call's 429 announced", arrivals, pauseEnd)
				break
			}
		}
	})
}

// TestMaxInFlightQueuedAttemptWaitsForEveryPause: attempts queued for a
// slot that a pause sent back to the rate limiter, and that queue again
// once it ends, are held by the next pause learned meanwhile too, as often
// as that happens: a host that answers two calls in a row 429 with
// Retry-After: 20 gets no request during either pause. (The two pauses
// together stay within WithMaxRetryAfter's 60s, which bounds an
// attempt's waits for them in all: TestMaxInFlightPausesAfterPassedSlotBoundedInAll.)
func TestMaxInFlightQueuedAttemptWaitsForEveryPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		codes, arrivals := queuedBehindPauses(t, 2)
		throttled := 0
		for _, c := range codes {
			if c == http.StatusTooManyRequests {
				throttled++
			}
		}
		if throttled != 2 {
			t.Errorf("statuses %v, want two 429s and two 200s", codes)
		}
		if len(arrivals) != 4 {
			t.Fatalf("the server got requests at %v, want 4", arrivals)
		}
		// Each 429 came 1 s after its request, and paused the host 20 s
		// (a pause's end is spread by a jitter of its own).
		if arrivals[1] < 21*time.Second || arrivals[2] < arrivals[1]+21*time.Second {
			t.Errorf("the server got requests at %v; want none during the pauses the 429s at %v and %v announced",
				arrivals, arrivals[0]+time.Second, arrivals[1]+time.Second)
		}
	})
}
