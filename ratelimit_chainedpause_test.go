package resilient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestPauseWaitsBoundedInTotal: an attempt held by the host's pause waits
// no longer than WithMaxRetryAfter's limit in all, however many pauses
// follow one another while it waits. Call A's 429 (Retry-After: 90)
// pauses the host from t=0 to t=90s; call B, at t=1s, waits for it
// (89s, within the 2m limit); call C's attempt, sent before the pause,
// gets its own 429 (Retry-After: 90) at t=89s, which pauses the host
// until t=179s. B, woken at t=90s, would wait 89s more: 178s in all for
// pauses the server set, past the 2m the caller allows for one. It is
// refused then (ErrRateLimited), as a single pause that long is, instead
// of being held until t=179s (found by TestBoundsProperty, seed
// 20271642).
func TestPauseWaitsBoundedInTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		throttled := func(req *http.Request) *http.Response {
			h := http.Header{"Retry-After": {"90"}}
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader("slow down")), Request: req}
		}
		base := roundTrip(func(req *http.Request) (*http.Response, error) {
			switch req.Header.Get("X-Who") {
			case "A":
				return throttled(req), nil
			case "C":
				time.Sleep(89 * time.Second) // sent before A's pause, answered within it
				return throttled(req), nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
		})
		const limit = 2 * time.Minute
		send := chainedPauseSender(base, limit)
		cDone := make(chan struct{})
		go func() {
			defer close(cDone)
			send("C")
		}()
		synctest.Wait() // C is in flight
		if status, err := send("A"); status != 429 || err != nil {
			t.Fatalf("A: %d, %v; want its 429", status, err)
		}
		time.Sleep(time.Second)
		start := time.Now()
		status, err := send("B")
		took := time.Since(start)
		<-cDone
		// B is refused once the pauses it would wait pass the limit:
		// at t=90s at the earliest (the first pause, within it), at
		// t=121s at the latest (the limit and its spread).
		if !errors.Is(err, resilient.ErrRateLimited) || took > limit+time.Second {
			t.Errorf("B: %d, %v after %v; want it refused (ErrRateLimited) within %v of waiting for pauses", status, err, took, limit)
		}
	})
}

// TestPauseThenPaceBoundedInTotal: the same for a pause followed by a turn
// of the pace the server announced. The host announces 10 requests per
// 30 minutes, one left (paced at a turn per 189s, with a burst of one);
// call A takes that turn at t=0 and gets a 429 (Retry-After: 90). Call B,
// at t=1s, waits out the pause (89s) and would then wait for the next
// turn of the pace, at t=189s: 188s in all for waits the server set, past
// the 2m the caller allows. It is refused at t=90s instead (found by
// TestBoundsProperty, seed 20263396).
func TestPauseThenPaceBoundedInTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTrip(func(req *http.Request) (*http.Response, error) {
			h := http.Header{}
			status := 200
			switch req.Header.Get("X-Who") {
			case "X":
				h.Set("RateLimit-Policy", `"default";q=10;w=1800`)
				h.Set("RateLimit", `"default";r=1;t=1800`)
			case "A":
				status = 429
				h.Set("Retry-After", "90")
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
		})
		const limit = 2 * time.Minute
		send := chainedPauseSender(base, limit)
		if status, err := send("X"); status != 200 || err != nil {
			t.Fatalf("X: %d, %v; want 200", status, err)
		}
		if status, err := send("A"); status != 429 || err != nil {
			t.Fatalf("A: %d, %v; want its 429", status, err)
		}
		time.Sleep(time.Second)
		start := time.Now()
		status, err := send("B")
		if took := time.Since(start); !errors.Is(err, resilient.ErrRateLimited) || took > limit+time.Second {
			t.Errorf("B: %d, %v after %v; want it refused (ErrRateLimited) within %v of waiting for the server's limits", status, err, took, limit)
		}
	})
}

// chainedPauseSender returns a function that sends a GET marked X-Who: who
// through a Transport over base with one attempt per call, no breaker, no
// budget, no call budget, and limit as WithMaxRetryAfter, and reports its
// status once its body is read.
func chainedPauseSender(base http.RoundTripper, limit time.Duration) func(who string) (int, error) {
	tr := resilient.New(base, resilient.WithoutBreaker(), resilient.WithoutRetryBudget(),
		resilient.WithMaxRetries(0), resilient.WithMaxRetryAfter(limit), resilient.WithMaxElapsed(0))
	return func(who string) (int, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://api.test/v1/posts", nil)
		req.Header.Set("X-Who", who)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}
