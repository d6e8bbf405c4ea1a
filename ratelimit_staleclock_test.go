package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestStaticPaceKeptWhenAnAttemptsClockIsOlder: an attempt's time is read
// as its call starts, before it takes its partition's lock; another
// attempt, whose time is read later, may take the lock first (callers
// contending for one partition, or a WithRateLimitKey that takes a while,
// as here). The pace's limiter, given the older time after the later one,
// counted the time between them as refilled a second time: each such
// attempt made up to that much of a token, and the host got more than the
// pace allows (64 callers contending for a pace of 200 a second sent 10%
// more). Two callers, one of whose keys takes half a second, send no more
// than the pace allows in all.
func TestStaticPaceKeptWhenAnAttemptsClockIsOlder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []time.Time
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithRateLimit(1, 1), WithRateLimitKey(slowTenantKey), WithMaxRetries(0), WithMaxElapsed(0))
		const run = 30 * time.Second
		start := time.Now()
		var wg sync.WaitGroup
		for _, slow := range []bool{false, true} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < run {
					req := newRequest(t, t.Context(), "GET", "http://api.test/", nil)
					if slow {
						req.Header.Set("X-Slow", "1")
					}
					resp, err := tr.RoundTrip(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		span := sent[len(sent)-1].Sub(sent[0])
		if allowed := 1 + int(span/time.Second); len(sent) > allowed {
			t.Errorf("%d requests sent in %v at a pace of one a second with a burst of 1, want %d at most", len(sent), span, allowed)
		}
	})
}

// slowTenantKey is a WithRateLimitKey that puts every request in one
// partition, and takes half a second to look up that of a request marked
// X-Slow (a tenant's lookup): the attempt's time, read before, is then
// older than that of an attempt read meanwhile.
func slowTenantKey(req *http.Request) string {
	if req.Header.Get("X-Slow") != "" {
		time.Sleep(500 * time.Millisecond)
	}
	return "tenant"
}

// TestRateLimitLocalWaitNotTheClockOfAnother: an attempt whose time was
// read before a slow WithRateLimitKey, and that finds a token of the pace
// at once, waited for nothing: its Attempt.LocalWait and its call's
// Report.Waited are 0, whatever time another attempt of its partition read
// meanwhile.
func TestRateLimitLocalWaitNotTheClockOfAnother(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var waits []time.Duration // in the order the attempts end: the fast one's first
		tr := New(new(okBase), WithRateLimit(100, 100), WithRateLimitKey(slowTenantKey), WithObserver(func(a Attempt) {
			mu.Lock()
			waits = append(waits, a.LocalWait)
			mu.Unlock()
		}))
		var wg sync.WaitGroup
		var report Report
		wg.Go(func() {
			req := newRequest(t, WithReport(t.Context(), &report), "GET", "http://api.test/", nil)
			req.Header.Set("X-Slow", "1")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
		time.Sleep(100 * time.Millisecond)
		resp, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wg.Wait()
		if len(waits) != 2 || waits[1] != 0 {
			t.Errorf("LocalWait of the fast attempt, then the slow-keyed one, a token free for each: %v, want [0s 0s]", waits)
		}
		if report.Waited != 0 {
			t.Errorf("Report.Waited = %v, want 0", report.Waited)
		}
	})
}

// TestRateLimitStaticPaceInASynctestBubbleAfterRealTime: a Transport whose
// partition was used in real time, then inside a testing/synctest bubble,
// whose fake clock starts in 2000 and has no monotonic reading (a client
// shared by a package's tests), paces the bubble's calls on the bubble's
// clock, as its callClock does (TestCallClockFakeTime). Holding every later
// time to the partition's latest one (see partition.at), it froze the pace
// at that real time, decades ahead: every call that had to wait for its
// turn was refused as past its deadline.
func TestRateLimitStaticPaceInASynctestBubbleAfterRealTime(t *testing.T) {
	tr := New(new(okBase), WithRateLimit(10, 1))
	resp, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		for i := range 5 {
			resp, err := tr.RoundTrip(newRequest(t, t.Context(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatalf("call %d in the bubble: %v", i, err)
			}
			resp.Body.Close()
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("five calls at 10 a second with a burst of 1 took %v in the bubble, want 500ms at most", d)
		}
	})
}
