package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitLocalWaitNotTheClockOfAnother: an attempt whose time was
// read before a slow WithRateLimitKey, and that finds a token of the pace
// at once, waited for nothing: its Attempt.LocalWait and its call's
// Report.Waited are 0, whatever time another attempt of its partition read
// meanwhile.
func TestRateLimitLocalWaitNotTheClockOfAnother(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		key := func(req *http.Request) string {
			if req.Header.Get("X-Slow") != "" {
				time.Sleep(500 * time.Millisecond) // a tenant's lookup
			}
			return "tenant"
		}
		var mu sync.Mutex
		var waits []time.Duration // in the order the attempts end: the fast one's first
		tr := New(base, WithRateLimit(100, 100), WithRateLimitKey(key), WithObserver(func(a Attempt) {
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
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	tr := New(base, WithRateLimit(10, 1))
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
