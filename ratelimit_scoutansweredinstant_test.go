package resilient

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitScoutAnsweredAsWaitEndsAnyAnswer: as in
// TestRateLimitScoutAnsweredAsWaitEnds, a host's quota of 100 an hour,
// counted in clock hours, is spent a second before the hour ends, which
// leaves the pace's bucket without a token at the reset; a batch of 50
// calls comes half a second after it, or half a second before it, held
// then by the spent quota to the reset. The first of the attempts whose
// turn of the old pace passes the bound goes as the new window's scout
// halfway through the wait for its answer (see nextScout), and that
// answer comes at the instant the others' wait for it ends: the new
// window's count, a 500 without one, a 429 whose Retry-After is 30 s, a
// 200 that says the quota is still spent, or a connection reset. The
// callers give up at that instant, or Transport.ResetHost is called then,
// or neither. Under a WithMaxRetryAfter of 30 s, no turn of the pace comes
// before that wait ends; under one of a minute, the first comes before,
// and its request, and those its answer lets go, are still in flight then
// (answered a nanosecond later), so that a scout is still out. An attempt
// that finds the answer learned as its wait ends looks at it as one that
// answer woke does (see acquireTurn), and then waits for the next answer,
// or for its turn, or is refused, or looks again: each attempt ends (one
// that went round its wait again without waiting, the answer's channel
// still closed, never blocks, which stops the bubble's clock: the test
// hangs to its -timeout in acquireTurn), the host gets one request a call
// at most and answers none 429, every call ends within WithMaxRetryAfter
// of the batch, a call given up on ends with its context's error or a
// refusal, and none stays counted in flight. Which attempts take the
// partition's lock before the answer is learned is the goroutines' order:
// those are refused, their wait over, and the test does not count them.
func TestRateLimitScoutAnsweredAsWaitEndsAnyAnswer(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	answers := []struct {
		name   string
		answer func(req *http.Request, srv http.Handler) (*http.Response, error)
	}{
		{"new window", func(req *http.Request, srv http.Handler) (*http.Response, error) {
			return handlerRT{srv}.RoundTrip(req)
		}},
		{"500", func(req *http.Request, _ http.Handler) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}},
		{"429 Retry-After 30", func(req *http.Request, _ http.Handler) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}}, Body: http.NoBody, Request: req}, nil
		}},
		{"still spent", func(req *http.Request, _ http.Handler) (*http.Response, error) {
			h := http.Header{"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"3590"}}
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
		}},
		{"connection reset", func(*http.Request, http.Handler) (*http.Response, error) {
			return nil, errReset
		}},
	}
	for _, held := range []bool{false, true} {
		for _, beside := range []bool{false, true} {
			for _, a := range answers {
				for _, then := range []string{"nothing", "callers give up", "ResetHost"} {
					name := a.name + "/" + then
					if beside {
						name = "a turn answered after/" + name
					}
					if held {
						name = "held by the spent quota/" + name
					}
					t.Run(name, func(t *testing.T) {
						for range 3 {
							synctest.Test(t, func(t *testing.T) {
								scoutAnsweredAsWaitEnds(t, held, beside, a.answer, then)
							})
						}
					})
				}
			}
		}
	}
}

// scoutAnsweredAsWaitEnds runs one batch of
// TestRateLimitScoutAnsweredAsWaitEndsAnyAnswer: made half a second after
// the reset, or before it when held; the scout answered by answer at the
// end of the others' wait for it, when then happens too. With beside,
// WithMaxRetryAfter is a minute, and the pace's first turn comes before
// that wait ends: its request, and those its answer lets go, are answered
// a nanosecond after it, still in flight as the scout's answer comes.
func scoutAnsweredAsWaitEnds(t *testing.T, held, beside bool, answer func(*http.Request, http.Handler) (*http.Response, error), then string) {
	maxWait := 30 * time.Second
	if beside {
		maxWait = time.Minute
	}
	start := time.Now().Truncate(time.Hour)
	reset := start.Add(time.Hour)
	batch := reset.Add(500 * time.Millisecond)
	scoutBy := batch.Add(maxWait / scoutGraceShare) // the others' wait for the scout's answer ends
	if held {
		batch = reset.Add(-500 * time.Millisecond)
		scoutBy = reset.Add(maxWait / scoutGraceShare)
	}
	srv := &hourQuotaServer{announce: func(int) bool { return true }, start: start, ok: map[int]int{}, throttled: map[int]int{}}
	var mu sync.Mutex
	var scout time.Time // when the first request after the reset was sent
	hits := 0           // requests after the reset
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		now := time.Now()
		mu.Lock()
		first := scout.IsZero() && !now.Before(reset)
		if first {
			scout = now
		}
		if !now.Before(reset) {
			hits++
		}
		mu.Unlock()
		if !first {
			if beside && !now.Before(reset) && !now.After(scoutBy) {
				time.Sleep(scoutBy.Add(time.Nanosecond).Sub(now))
			}
			return handlerRT{srv}.RoundTrip(req)
		}
		time.Sleep(scoutBy.Sub(now))
		return answer(req, srv)
	})
	tr := New(base, WithMaxRetries(0), WithMaxRetryAfter(maxWait), withRand(func(int64) int64 { return 0 }))
	client := &http.Client{Transport: tr}
	useFirstHour(t, client, start, 99)
	time.Sleep(time.Until(reset.Add(-time.Second)))
	if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || err != nil {
		t.Fatalf("the first hour's last call: %d, %v", code, err)
	}
	time.Sleep(time.Until(batch))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch then {
	case "callers give up":
		time.AfterFunc(time.Until(scoutBy), cancel)
	case "ResetHost":
		time.AfterFunc(time.Until(scoutBy), func() { tr.ResetHost("api.test") })
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "GET", "http://api.test/x", nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if took := time.Since(batch); took > maxWait {
				t.Errorf("call %d ended %v after the batch was made; want %v (WithMaxRetryAfter) at most", i, took, maxWait)
			}
			if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrRateLimited) && !errors.Is(err, errReset) {
				t.Errorf("call %d, given up on: %v; want its context's error or a refusal", i, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if scout.IsZero() || !scout.Before(scoutBy) {
		t.Fatalf("the new window's first request went %v after the reset, not before the others' wait for it ended (%v): the case tests nothing", scout.Sub(reset), scoutBy.Sub(reset))
	}
	if hits > 50 || srv.throttled[1] != 0 {
		t.Errorf("the host got %d requests after the reset, and answered %d 429; want 50 at most, one a call, and none 429", hits, srv.throttled[1])
	}
	checkNoneInFlight(t, tr)
}
