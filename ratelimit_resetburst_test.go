package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// quotaServer is a base RoundTripper for a host with a quota of limit
// requests a window, counted from start, announced with X-RateLimit-Limit,
// -Remaining and -Reset (seconds from now, with decimals) on every answer
// and answered with a 429 when spent. Each answer takes answer. With
// slide 0 the windows are fixed: the quota is whole again at each one's
// start. With slide above 0 the first window is followed by a rolling
// one: from its end, one request comes back each slide, and an answer
// says Remaining 0 with the reset at the next request's return. It counts
// requests when they arrive, does no I/O, and runs in a synctest bubble.
type quotaServer struct {
	limit  int
	window time.Duration
	slide  time.Duration
	answer time.Duration
	start  time.Time
	// spent is how many requests of the first window other clients of
	// the key spent before start.
	spent int
	// hang, when above 0, is how long the first request of the second
	// window takes to be answered (a scout that hangs), unless its
	// context ends first.
	hang time.Duration

	mu        sync.Mutex
	used      map[int64]int // requests counted in each fixed window
	after     int           // requests counted after the first window (rolling)
	hits      int
	throttled int  // 429s answered
	hung      bool // the request that hangs came
	late      int  // requests after the first window
}

func (s *quotaServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	now := time.Now()
	s.mu.Lock()
	s.hits++
	elapsed := now.Sub(s.start)
	var remaining int
	var reset time.Duration
	ok := false
	if s.slide == 0 || elapsed < s.window {
		w := int64(elapsed / s.window)
		if s.used == nil {
			s.used = map[int64]int{0: s.spent}
		}
		if s.used[w] < s.limit {
			s.used[w]++
			ok = true
		}
		remaining = s.limit - s.used[w]
		reset = s.start.Add(time.Duration(w+1) * s.window).Sub(now)
	} else {
		back := int((elapsed-s.window)/s.slide) + 1 // requests back since the first window
		if s.after < back {
			s.after++
			ok = true
		}
		reset = s.start.Add(s.window + time.Duration(back)*s.slide).Sub(now)
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusTooManyRequests
		s.throttled++
	}
	if elapsed >= s.window {
		s.late++
	}
	hang := s.hang > 0 && elapsed >= s.window && !s.hung
	s.hung = s.hung || hang
	s.mu.Unlock()
	if hang {
		select {
		case <-time.After(s.hang):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	time.Sleep(s.answer)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat((reset-s.answer).Seconds(), 'f', 3, 64))
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func (s *quotaServer) counts() (hits, throttled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits, s.throttled
}

// resetCall is what one call of spendThenWait got, and when it was done,
// from the first call's start.
type resetCall struct {
	status int
	err    error
	done   time.Duration
}

// spendThenWait has n goroutines call through tr one call after another,
// srv.limit+n calls in all, from srv.start: the first srv.limit or so
// spend srv's first window at once, and the others wait for its reset.
// It returns what each call got, and the server's hits and 429s.
func spendThenWait(tr http.RoundTripper, srv *quotaServer, n int) (calls []resetCall, hits, throttled int) {
	get := func() (int, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://api.test/v1/items", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	calls = make([]resetCall, srv.limit+n)
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(calls) {
					return
				}
				status, err := get()
				calls[i] = resetCall{status, err, time.Since(srv.start)}
			}
		})
	}
	wg.Wait()
	hits, throttled = srv.counts()
	return calls, hits, throttled
}

// TestSpentQuotaWaitersAllGoAtTheReset: a fixed window of 100 (600)
// requests a minute, spent at t=0 (the last answer says Remaining 0, the
// reset 60 s ahead), holds 8 (32) calls that come then until its reset,
// which they wait for within the default WithMaxRetryAfter (60 s). At the
// reset one goes first; its answer announces the new window's quota, 99
// (599) left, and the others go at once, on the server's word: all get
// their 200, none a 429, none refused. Before, the pace learned from the
// last answer of the spent window (a burst of 1) gave the others turns
// 0.63 s (0.1 s) apart, which the bound of WithMaxRetryAfter on the
// server's waits in all refused at t=60 s: a minute of waiting, then
// ErrRateLimited, where a plain client had its 429 at once, and the
// server would have taken every one.
func TestSpentQuotaWaitersAllGoAtTheReset(t *testing.T) {
	for _, c := range []struct{ limit, waiters int }{{100, 8}, {600, 32}} {
		t.Run(fmt.Sprintf("%d a minute, %d waiters", c.limit, c.waiters), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &quotaServer{limit: c.limit, window: time.Minute, answer: 50 * time.Millisecond, start: time.Now()}
				tr := New(srv, WithoutBreaker(), WithoutRetryBudget())
				calls, hits, throttled := spendThenWait(tr, srv, c.waiters)
				// The reset is at 60 s; the calls that wait for it wake
				// within the spread of that wait (1 s), then wait for the
				// first one's answer (50 ms) at most, and have their own
				// (50 ms).
				const within = time.Minute + time.Second + 200*time.Millisecond
				refused := 0
				for i, call := range calls {
					if call.status != http.StatusOK || call.err != nil || call.done > within {
						if refused++; refused <= 3 {
							t.Errorf("call %d: %d, %v at %v; want 200 by %v", i, call.status, call.err, call.done, within)
						}
					}
				}
				if want := c.limit + c.waiters; refused != 0 || hits != want || throttled != 0 {
					t.Errorf("%d calls failed; the server got %d requests, %d answered 429; want none failed, %d requests, none 429", refused, hits, throttled, want)
				}
			})
		})
	}
}

// TestSpentQuotaWaitersRollingWindowNoFlood: the same 100 a minute, but
// the window that follows the first rolls: from t=60 s one request comes
// back each 0.6 s, and an answer says Remaining 0 with a reset at the
// next one's return. The first waiter to go at the reset is answered that
// the quota is spent again: the others are not sent into it on a guess,
// nor held past the bound. Each waiter either gets its 200 or is refused
// (ErrRateLimited) within WithMaxRetryAfter, the spread of the wait for
// the reset and the first one's answer. The server answers none of them
// a 429 (0 asserted): one request goes at the reset, the pace's burst
// being the count of the spent window (see
// TestReorderedAnswerSetsNoBurstAtTheReset), and each one after it at a
// reset the server announced, which at 1 s is later than the 0.6 s its
// slot takes to come back. (Before, a burst left by a reordered answer's
// count sent 2 or more together at the reset in about one run in six.)
func TestSpentQuotaWaitersRollingWindowNoFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, waiters = 100, 8
		srv := &quotaServer{limit: limit, window: time.Minute, slide: 600 * time.Millisecond, answer: 50 * time.Millisecond, start: time.Now()}
		tr := New(srv, WithoutBreaker(), WithoutRetryBudget())
		calls, hits, throttled := spendThenWait(tr, srv, waiters)
		const within = time.Minute + time.Second + 200*time.Millisecond
		served := 0
		for i, call := range calls {
			switch {
			case call.done > within:
				t.Errorf("call %d: %d, %v at %v; want it done by %v", i, call.status, call.err, call.done, within)
			case call.err == nil && call.status == http.StatusOK:
				served++
			case !errors.Is(call.err, ErrRateLimited):
				t.Errorf("call %d: %d, %v; want 200 or ErrRateLimited", i, call.status, call.err)
			}
		}
		if served <= limit || hits != served || throttled != 0 {
			t.Errorf("the server got %d requests, %d answered 429, %d calls served; want more than %d served, each request sent one served, none 429", hits, throttled, served, limit)
		}
	})
}

// TestSpentQuotaScoutThatHangsHoldsNoOneLong: the wait for the first
// answer after a spent quota's reset is bounded on its own. A quota of 5
// requests a minute (a turn of the pace each 12.6 s) is spent at t=0; at
// the reset the first waiter goes and its request hangs. The others, whose
// turns pass the bound of WithMaxRetryAfter, wait for that answer a tenth
// of it (6 s) past the reset at most, then are refused, having sent
// nothing: without that bound each waited for its own turn, 12.6 s
// apart, up to the call's budget, while the scout hung.
func TestSpentQuotaScoutThatHangsHoldsNoOneLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, waiters = 5, 8
		srv := &quotaServer{limit: limit, window: time.Minute, answer: 50 * time.Millisecond, start: time.Now(), hang: time.Hour}
		tr := New(srv, WithoutBreaker(), WithoutRetryBudget(), WithMaxRetries(0))
		calls, _, _ := spendThenWait(tr, srv, waiters)
		// The reset is at 60 s, the spread of its wait 1 s at most, the
		// wait for the scout's answer 6 s past the reset at most.
		const within = time.Minute + 7*time.Second + 200*time.Millisecond
		refused, hung := 0, 0
		for i, call := range calls {
			switch {
			case call.done < time.Minute:
				// Sent into the first window (some answered 429, sent
				// together before its count was known).
			case call.err != nil && !errors.Is(call.err, ErrRateLimited):
				hung++ // the scout, cut by the call's budget
			case call.done > within || !errors.Is(call.err, ErrRateLimited):
				t.Errorf("call %d: %d, %v at %v; want ErrRateLimited by %v", i, call.status, call.err, call.done, within)
			default:
				refused++
			}
		}
		srv.mu.Lock()
		late := srv.late
		srv.mu.Unlock()
		if hung != 1 || refused == 0 || late != 1 {
			t.Errorf("%d calls hung, %d refused after the reset, the server got %d requests after it; want 1 hung, the others refused, 1 request", hung, refused, late)
		}
	})
}
